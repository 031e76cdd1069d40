S6F11 W <L <U4 17> <U2 5001> <L <L <U1 1> <L <A "LOT7"> <U1 3> <A "W03">>> <L <U2 300> <L <F8 0.25> <U4 614> <BOOLEAN TRUE>>>>>
