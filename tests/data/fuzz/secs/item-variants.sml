<l[2]<u4 0x10 7><bool true f T FALSE 2>>.
