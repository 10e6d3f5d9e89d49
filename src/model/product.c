/* product.c: not written yet. */
