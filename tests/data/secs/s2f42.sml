S2F42 <L <B 4> <L>>
