<F4 nan inf -0 1e-45>
