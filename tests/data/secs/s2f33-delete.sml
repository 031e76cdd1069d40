S2F33 W <L <U4 1> <L>>
