/* csv.c: not written yet. */
