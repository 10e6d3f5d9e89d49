/* blas.c: not written yet. */
