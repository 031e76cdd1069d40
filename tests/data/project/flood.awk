# flood.awk: a persisted-looking stream of about N events (awk -v N=100000)
# for the flood tests: run_start, then wafers of 10 mm dies on 300 mm, each
# die a die_done with, for every fifth die, defects before it.  Written so
# the numbers are easy to recompute with jq.
function ev(type, rest) {
	seq++
	printf "{\"v\":1,\"type\":\"%s\",\"run\":\"flood\",\"seq\":%d,\"t\":\"2026-11-21T10:00:00.%06dZ\",\"id\":\"%016x\"%s}\n", type, seq, seq % 1000000, seq, rest
}
BEGIN {
	if (!N) N = 100000
	P = 10000; O = -150000; R = 147000
	classes[0] = "particle"; classes[1] = "scratch"; classes[2] = "residue"
	ev("run_start", ",\"lot\":\"FLOOD\",\"recipe\":\"r\",\"tool\":\"t\",\"source\":\"sim\",\"wafers\":25,\"diameter_mm\":300,\"edge_mm\":3,\"pitch_um\":[10000,10000],\"origin_um\":[-150000,-150000],\"cols\":30,\"rows\":30,\"die_px\":[64,64],\"pixel_um\":156.25")
	w = 0
	while (seq < N) {
		w++
		wid = sprintf("F%02d", w)
		ev("wafer_start", sprintf(",\"wafer\":\"%s\",\"slot\":%d,\"lot\":\"FLOOD\",\"dies\":616", wid, w))
		nd = 0
		for (r = 0; r < 30 && seq < N; r++) for (c = 0; c < 30 && seq < N; c++) {
			x0 = O + c * P; y0 = O + r * P; x1 = x0 + P; y1 = y0 + P
			if (x0*x0+y0*y0 > R*R || x1*x1+y0*y0 > R*R || x0*x0+y1*y1 > R*R || x1*x1+y1*y1 > R*R) continue
			k = 0
			if ((c + r * 7 + w) % 5 == 0) {
				for (k = 0; k < 1 + (c + r) % 3; k++) {
					ev("defect", sprintf(",\"wafer\":\"%s\",\"col\":%d,\"row\":%d,\"index\":%d,\"x_um\":%d,\"y_um\":%d,\"wx_um\":%d,\"wy_um\":%d,\"bbox\":[1,1,3,3],\"w_um\":30,\"h_um\":30,\"area_px\":9,\"area_um2\":%d,\"polarity\":\"dark\",\"contrast\":40.5,\"class\":\"%s\",\"class_num\":%d", wid, c, r, k, 2000 + k * 1500, 5000, x0 + 2000 + k * 1500, y0 + 5000, 100 * (k + 1) * (k + 1), classes[k % 3], k % 3 + 1))
				}
			}
			ev("die_done", sprintf(",\"wafer\":\"%s\",\"col\":%d,\"row\":%d,\"defects\":%d", wid, c, r, k))
			nd++
		}
		ev("wafer_end", sprintf(",\"wafer\":\"%s\",\"slot\":%d,\"dies\":%d", wid, w, nd))
	}
	ev("run_end", ",\"status\":\"completed\",\"wafers\":" w ",\"dies\":0")
}
