S5F1 W <L <B 0x84> <U4 1001> <A "Chamber pressure out of range">>
