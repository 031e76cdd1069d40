<L <L> <B> <BOOLEAN> <A ""> <J> <I8> <I1> <I2> <I4> <F8> <F4> <U8> <U1> <U2> <U4>>
