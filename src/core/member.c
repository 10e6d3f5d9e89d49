/* member.c: not written yet. */
