/*
 * rng.c — xoshiro256** (Blackman & Vigna), seeded through splitmix64, and
 * the few distributions training and sampling need. Written out here
 * rather than taken from libc so that a seed means the same stream on
 * every platform: model files must be reproducible byte for byte.
 */
#include <math.h>

#include "util/util.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void ebm_rng_init(struct ebm_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++) {
		r->s[i] = splitmix64(&x);
	}
	r->has_spare = false;
	r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t ebm_rng_u64(struct ebm_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double ebm_rng_uniform(struct ebm_rng *r)
{
	return (double)(ebm_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t ebm_rng_below(struct ebm_rng *r, uint64_t n)
{
	/* Rejection keeps the result unbiased for any n. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;
	do {
		v = ebm_rng_u64(r);
	} while (v >= limit);
	return v % n;
}

double ebm_rng_normal(struct ebm_rng *r)
{
	if (r->has_spare) {
		r->has_spare = false;
		return r->spare;
	}
	double u, v, s;
	do {
		u = 2.0 * ebm_rng_uniform(r) - 1.0;
		v = 2.0 * ebm_rng_uniform(r) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	double m = sqrt(-2.0 * log(s) / s);
	r->spare = v * m;
	r->has_spare = true;
	return u * m;
}

void ebm_rng_normal_fill(struct ebm_rng *r, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = (float)ebm_rng_normal(r);
	}
}

void ebm_rng_shuffle(struct ebm_rng *r, size_t *idx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)ebm_rng_below(r, i);
		size_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}
