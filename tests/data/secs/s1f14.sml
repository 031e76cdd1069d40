S1F14 <L <B 0> <L <A "MDLN"> <A "SOFTREV">>>
