/*
 * shortest.c — the shortest decimal text that reads back as a given float
 * or double, in the notation of printf's %g: for JSON numbers (the score
 * responses of src/http/response.c, moved from there) and for training
 * options (src/train/options.c, src/info/model-info.c), so that 0.001f is
 * "0.001" and not "0.00100000005" everywhere. One implementation: an
 * exact integer fast path, and snprintf with a strtof/strtod check (the
 * reference) outside its range; both give the same text.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/*
 * The shortest %.*g (at least 6 digits, at most 9) that reads back as v.
 * If p digits read back, so do p + 1, so the search starts in the middle:
 * two conversions for most values instead of up to four.
 *
 * These are the reference versions (snprintf and strtof/strtod); the
 * encoders below use them only for values outside the fast path's range.
 */
static int shortest_float_ref(char *buf, size_t size, float v)
{
	int n = snprintf(buf, size, "%.8g", (double)v);
	if (strtof(buf, NULL) != v) {
		return snprintf(buf, size, "%.9g", (double)v);
	}
	char tmp[32];
	for (int p = 7; p >= 6; p--) {
		int m = snprintf(tmp, sizeof(tmp), "%.*g", p, (double)v);
		if (strtof(tmp, NULL) != v) {
			break;
		}
		memcpy(buf, tmp, (size_t)m + 1);
		n = m;
	}
	return n;
}

/* The same for doubles, 15 to 17 digits. */
static int shortest_double_ref(char *buf, size_t size, double v)
{
	int n = snprintf(buf, size, "%.16g", v);
	if (strtod(buf, NULL) != v) {
		return snprintf(buf, size, "%.17g", v);
	}
	char tmp[40];
	int m = snprintf(tmp, sizeof(tmp), "%.15g", v);
	if (strtod(tmp, NULL) == v) {
		memcpy(buf, tmp, (size_t)m + 1);
		n = m;
	}
	return n;
}

/*
 * Fast path, exact: the same strings without snprintf or strto*, for the
 * values a score response is made of (magnitudes 1e-4 .. 1e5 for floats,
 * 1e-4 .. 1e14 for doubles, where %g uses plain decimal notation).
 *
 * A finite nonzero v is m * 2^e with m an integer of `bits` bits (24 for
 * a float, 53 for a double). Rounded to p significant digits, v becomes
 * D * 10^-k with D an integer of p digits and k = p - 1 - X, X the decimal
 * exponent. For 0 <= k <= 20, N = m * 5^k < 2^100, and v * 10^k =
 * N * 2^(e + k) is computed exactly in 128-bit integers; D is that value
 * rounded half to even, as printf rounds. D * 10^-k reads back as v (as
 * strtof/strtod would, correctly rounded) exactly when it lies inside v's
 * rounding interval, half an ulp 2^e on each side (a quarter below a power
 * of two), ties going to the even mantissa; in units of 10^-k * 2^-s that
 * is a comparison of integers. A profile of 256-row score requests had
 * most of ebmd's time in the reference versions above.
 */
typedef unsigned __int128 u128;

static const uint64_t pow5_u64[21] = {
	1ull, 5ull, 25ull, 125ull, 625ull, 3125ull, 15625ull, 78125ull,
	390625ull, 1953125ull, 9765625ull, 48828125ull, 244140625ull,
	1220703125ull, 6103515625ull, 30517578125ull, 152587890625ull,
	762939453125ull, 3814697265625ull, 19073486328125ull,
	95367431640625ull,
};

static atomic_bool force_ref;

bool ebm_shortest_force_ref(bool on)
{
	return atomic_exchange(&force_ref, on);
}

static const uint64_t pow10_u64[20] = {
	1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
	10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
	100000000000ull, 1000000000000ull, 10000000000000ull,
	100000000000000ull, 1000000000000000ull, 10000000000000000ull,
	100000000000000000ull, 1000000000000000000ull,
	10000000000000000000ull,
};

/* m * 2^e >= 10^j, exactly, for -5 <= j <= 20 and the ranges below. */
static bool ge_pow10(uint64_t m, int e, int j)
{
	u128 lhs = m;
	u128 rhs = 1;
	if (j < 0) {
		lhs *= pow5_u64[-j];
	} else {
		rhs = pow5_u64[j];
	}
	int s = e - j;  /* compare lhs * 2^s with rhs */
	if (s >= 0) {
		return s >= 64 || (lhs << s) >= rhs;
	}
	if (-s >= 100) {
		return false;
	}
	return lhs >= (rhs << -s);
}

/* A finite positive value m * 2^e with m of `bits` bits (normal). */
struct fp {
	uint64_t m;
	int e;
	int bits;
	int x;        /* floor(log10 (m * 2^e)) */
};

/* One rounding of a struct fp to p significant digits. */
struct rounded {
	uint64_t d;   /* p digits (10^(p-1) <= d < 10^p) */
	int x;        /* decimal exponent of d's first digit */
	bool rt;      /* d * 10^(x - p + 1) reads back as the value */
};

/*
 * Rounds v to p significant digits (half to even, as printf does) and
 * checks whether the result reads back as v. False when %g would use an
 * exponent or the value is outside the exact range.
 */
static bool round_to(const struct fp *v, int p, struct rounded *out)
{
	int x = v->x;
	if (x < -4 || x >= p) {
		return false;
	}
	int k = p - 1 - x;
	if (k > 20) {
		return false;
	}
	int sh = v->e + k;
	uint64_t d;
	u128 n = (u128)v->m * pow5_u64[k];
	if (sh >= 0) {
		if (sh > 20) {
			return false;
		}
		d = (uint64_t)(n << sh);
		out->rt = true;
	} else {
		int s = -sh;
		if (s >= 100) {
			return false;
		}
		u128 q = n >> s;
		u128 r = n - (q << s);
		u128 half = (u128)1 << (s - 1);
		if (r > half || (r == half && (q & 1) != 0)) {
			q++;
		}
		/* |D 2^s - N| against half an ulp, 5^k / 2 in these units. */
		u128 qs = q << s;
		bool below = qs < n;
		u128 diff = below ? n - qs : qs - n;
		u128 ulp = pow5_u64[k];
		bool even = (v->m & 1) == 0;
		if (below && v->m == (uint64_t)1 << (v->bits - 1)) {
			/* The gap below a power of two is half as wide. */
			out->rt = 4 * diff < ulp || (4 * diff == ulp && even);
		} else {
			out->rt = 2 * diff < ulp || (2 * diff == ulp && even);
		}
		d = (uint64_t)q;
	}
	/* d has p digits, or is 10^p when v rounded up to a power of ten. */
	if (d == pow10_u64[p]) {
		d = pow10_u64[p - 1];
		x++;
		if (x >= p) {
			return false;
		}
	}
	out->d = d;
	out->x = x;
	return true;
}

/* %g's plain notation of the p digits of r.d with decimal exponent r.x. */
/* The n decimal digits of d (leading zeros included) at o. */
static void write_digits(char *o, uint64_t d, int n)
{
	static const char pairs[201] =
		"00010203040506070809101112131415161718192021222324252627282930"
		"31323334353637383940414243444546474849505152535455565758596061"
		"62636465666768697071727374757677787980818283848586878889909192"
		"93949596979899";
	while (n >= 2) {
		unsigned two = (unsigned)(d % 100);
		d /= 100;
		n -= 2;
		o[n] = pairs[2 * two];
		o[n + 1] = pairs[2 * two + 1];
	}
	if (n == 1) {
		o[0] = (char)('0' + d % 10);
	}
}

static int write_plain(char *buf, bool neg, const struct rounded *r, int p)
{
	uint64_t d = r->d;
	int x = r->x;
	/* Trailing zeros of the fraction go. */
	while (p > x + 1 && p > 1 && d % 10 == 0) {
		d /= 10;
		p--;
	}
	char *o = buf;
	if (neg) {
		*o++ = '-';
	}
	if (x < 0) {
		*o++ = '0';
		*o++ = '.';
		for (int i = -1; i > x; i--) {
			*o++ = '0';
		}
		write_digits(o, d, p);
		o += p;
	} else if (p > x + 1) {
		/* All digits, then the fraction moved up for the point (no
		 * division by a variable power of ten). */
		write_digits(o, d, p);
		for (int i = p; i > x + 1; i--) {
			o[i] = o[i - 1];
		}
		o[x + 1] = '.';
		o += p + 1;
	} else {
		write_digits(o, d, p);
		o += p;
	}
	*o = '\0';
	return (int)(o - buf);
}

/*
 * Sets v->x, if floor(log10 v) lies in [lo, hi); false otherwise. The
 * first guess, floor((e + bits - 1) * log10 2) via 78913 / 2^18, is the
 * exponent of the power of two below v, so it is right or one short.
 */
static bool decimal_exponent(struct fp *v, int lo, int hi)
{
	int x = ((v->e + v->bits - 1) * 78913) >> 18;
	if (x < lo - 1 || x >= hi) {
		return false;
	}
	if (ge_pow10(v->m, v->e, x + 1)) {
		x++;
	}
	if (x < lo || x >= hi) {
		return false;
	}
	v->x = x;
	return true;
}

/* Zero, as printf writes it. */
static int write_zero(char *buf, bool neg)
{
	return neg ? (memcpy(buf, "-0", 3), 2) : (memcpy(buf, "0", 2), 1);
}

/*
 * The shortest of p0 .. p0 - 2 digits (each shorter one tried only while
 * the longer one reads back), or p0 + 1 digits when p0 do not read back:
 * the search of the reference versions. 0 when the fast path cannot say.
 */
static int shortest_fast(char *buf, bool neg, struct fp *v, int p0,
		int p_min)
{
	struct rounded r;
	if (!round_to(v, p0, &r)) {
		return 0;
	}
	if (!r.rt) {
		if (!round_to(v, p0 + 1, &r)) {
			return 0;
		}
		return write_plain(buf, neg, &r, p0 + 1);
	}
	struct rounded best = r;
	int best_p = p0;
	for (int p = p0 - 1; p >= p_min; p--) {
		if (!round_to(v, p, &r)) {
			return 0;
		}
		if (!r.rt) {
			break;
		}
		best = r;
		best_p = p;
	}
	return write_plain(buf, neg, &best, best_p);
}

int ebm_shortest_float(char *buf, size_t size, float v)
{
	bool ref = atomic_load_explicit(&force_ref, memory_order_relaxed);
	uint32_t bits;
	memcpy(&bits, &v, sizeof(bits));
	bool neg = (bits >> 31) != 0;
	uint32_t be = (bits >> 23) & 0xff;
	if (!ref && be == 0 && (bits & 0x7fffff) == 0) {
		return write_zero(buf, neg);
	}
	if (!ref && be != 0 && be != 0xff) {
		struct fp f = {
			.m = (bits & 0x7fffff) | 0x800000,
			.e = (int)be - 150,
			.bits = 24,
		};
		int n;
		if (decimal_exponent(&f, -4, 5)
				&& (n = shortest_fast(buf, neg, &f, 8, 6)) > 0) {
			return n;
		}
	}
	return shortest_float_ref(buf, size, v);
}

int ebm_shortest_double(char *buf, size_t size, double v)
{
	bool ref = atomic_load_explicit(&force_ref, memory_order_relaxed);
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	bool neg = (bits >> 63) != 0;
	uint32_t be = (uint32_t)(bits >> 52) & 0x7ff;
	uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
	if (!ref && be == 0 && frac == 0) {
		return write_zero(buf, neg);
	}
	if (!ref && be != 0 && be != 0x7ff) {
		struct fp f = {
			.m = frac | ((uint64_t)1 << 52),
			.e = (int)be - 1075,
			.bits = 53,
		};
		int n;
		if (decimal_exponent(&f, -4, 15)
				&& (n = shortest_fast(buf, neg, &f, 16, 15)) > 0) {
			return n;
		}
	}
	return shortest_double_ref(buf, size, v);
}
