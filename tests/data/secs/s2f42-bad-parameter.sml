S2F42 <L <B 3> <L <L <A "PPID"> <B 3>>>>
