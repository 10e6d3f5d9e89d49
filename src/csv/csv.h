/*
 * csv.h — streaming CSV reader for ebmd-train (placeholder: API to be
 * written with csv.c).
 */
#ifndef EBM_CSV_CSV_H
#define EBM_CSV_CSV_H
#endif
