S5F1 <L <B 0x04> <U2 1001> <A "Chamber pressure out of range">>
