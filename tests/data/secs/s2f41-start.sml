S2F41 W <L <A "START"> <L <L <A "LOTID"> <A "LOT7">> <L <A "PPID"> <A "RECIPE-A">>>>
