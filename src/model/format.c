/*
 * format.c — the model file: serializer and a reader that trusts nothing
 * (the atomic file writer it uses is util/atomic-file.c). The byte layout
 * is at the top of include/ebm/model.h; docs/model-format.md repeats it
 * with every validation rule and its message.
 *
 * The reader and ebm_model_finalize() run the same checks (ebm_model_check
 * below), so a model that can be written can always be read back. The
 * in-memory object, scoring and sampling live in model.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "model/model.h"

#define FIXED_BYTES 64u      /* everything before the hidden widths */
#define CHECKSUM_BYTES 16u
#define MIN_FILE_BYTES (FIXED_BYTES + CHECKSUM_BYTES)
#define BLOB_ALIGN 16u
#define BOM_LITTLE 0x01020304u
#define BOM_BIG 0x04030201u  /* the same mark written by a big-endian host */

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_BOM = 12,
	OFF_SIZE = 16,
	OFF_D = 24,
	OFF_MEMBERS = 28,
	OFF_LAYERS = 32,
	OFF_ACT = 36,
	OFF_NREF = 40,
	OFF_ALPHA = 44,
	OFF_CREATED = 48,
	OFF_SEED = 56,
	OFF_HIDDEN = 64,
};

/* ======================================================================
 * Errors
 * ==================================================================== */

static enum ebm_status vfail(struct ebm_error *err, enum ebm_status code,
		const char *origin, uint64_t offset, bool show_offset,
		const char *fmt, va_list ap)
{
	if (err == NULL) {
		return code;
	}
	char msg[sizeof(err->message)];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (show_offset) {
		ebm_error_set(err, code, "%s: offset %" PRIu64 ": %s", origin,
				offset, msg);
	} else {
		ebm_error_set(err, code, "%s: %s", origin, msg);
	}
	err->offset = offset;
	return code;
}

/* "<origin>: offset N: <message>", err->offset = N. */
__attribute__((format(printf, 5, 6)))
static enum ebm_status fail_at(struct ebm_error *err, enum ebm_status code,
		const char *origin, uint64_t offset, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, code, origin, offset, true, fmt, ap);
	va_end(ap);
	return code;
}

/* "<origin>: <message>", err->offset = offset (UINT64_MAX: none). */
__attribute__((format(printf, 5, 6)))
static enum ebm_status fail(struct ebm_error *err, enum ebm_status code,
		const char *origin, uint64_t offset, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, code, origin, offset, false, fmt, ap);
	va_end(ap);
	return code;
}

static enum ebm_status fail_nomem(struct ebm_error *err, const char *origin)
{
	return fail(err, EBM_STATUS_NOMEM, origin, UINT64_MAX, "out of memory");
}

/* ======================================================================
 * Little-endian bytes, whatever the host's order
 * ==================================================================== */

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			(uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const uint8_t *p)
{
	uint32_t u = get_u32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f32(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	put_u32(p, u);
}

static bool mul64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b != 0 && a > UINT64_MAX / b) {
		return false;
	}
	*out = a * b;
	return true;
}

static bool add64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a > UINT64_MAX - b) {
		return false;
	}
	*out = a + b;
	return true;
}

static void digest(const uint8_t *p, size_t n, uint8_t out[CHECKSUM_BYTES])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
	memcpy(out, c.digest, CHECKSUM_BYTES);
}

static void hex_of(const uint8_t d[CHECKSUM_BYTES], char *hex)
{
	static const char xd[] = "0123456789abcdef";
	for (size_t i = 0; i < CHECKSUM_BYTES; i++) {
		hex[2 * i] = xd[d[i] >> 4];
		hex[2 * i + 1] = xd[d[i] & 15];
	}
	hex[2 * CHECKSUM_BYTES] = '\0';
}

/* ======================================================================
 * Shape: counts, their bounds, and the sizes they imply
 * ==================================================================== */

struct shape {
	uint32_t d, n_members, n_layers, act, n_ref;
	float alpha;
	uint32_t hidden[EBM_MODEL_MAX_LAYERS];
	/* Version 2: the prototype term (0 prototypes: a version-1 file). */
	uint32_t version, n_protos;
};

/* Version 2's prototype header after the options: u32 n, f32 w_net,
 * f32 w_proto. */
#define PROTO_HDR_BYTES 12u

/* Float counts of each blob section, and the blob's size in bytes. */
struct sizes {
	uint64_t n_params;   /* per member */
	uint64_t n_prec, n_all_params, n_ref_rows, n_floats;
	uint64_t n_proto_c;  /* n_protos * d */
	uint64_t blob_bytes;
};

/* Byte offsets of everything after the fixed header. */
struct layout {
	uint64_t objective;  /* each string: offset of its length field */
	uint64_t has_names;
	uint64_t names;
	uint64_t options;
	uint64_t proto_hdr;  /* version 2 only */
	uint64_t pad;        /* first padding byte */
	uint64_t mean, scale, prec, params, protos, proto_logw, proto_h,
			ref_rows, ref_energy;
	uint64_t end;        /* end of the blob = start of the checksum */
	uint64_t size;       /* whole file */
};

static enum ebm_status check_count(struct ebm_error *err, const char *origin,
		uint64_t offset, const char *what, uint32_t v, uint32_t max)
{
	if (v == 0) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, offset,
				"%s is 0, must be at least 1", what);
	}
	if (v > max) {
		return fail_at(err, EBM_STATUS_LIMIT, origin, offset,
				"%s is %" PRIu32 ", over the limit of %" PRIu32, what, v,
				max);
	}
	return EBM_STATUS_OK;
}

/* Everything in the fixed header except the hidden widths. */
static enum ebm_status check_header(const struct shape *s, const char *origin,
		struct ebm_error *err)
{
	enum ebm_status st;
	if ((st = check_count(err, origin, OFF_D, "feature count", s->d,
			EBM_MODEL_MAX_FEATURES)) ||
			(st = check_count(err, origin, OFF_MEMBERS, "member count",
			s->n_members, EBM_MODEL_MAX_MEMBERS)) ||
			(st = check_count(err, origin, OFF_LAYERS,
			"hidden layer count", s->n_layers, EBM_MODEL_MAX_LAYERS))) {
		return st;
	}
	if (s->act >= EBM_ACT_COUNT) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_ACT,
				"unknown activation %" PRIu32, s->act);
	}
	if ((st = check_count(err, origin, OFF_NREF, "reference row count",
			s->n_ref, EBM_MODEL_MAX_REF))) {
		return st;
	}
	/* Written so that NaN fails too. */
	if (!(s->alpha > 0.0f && s->alpha < 1.0f)) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_ALPHA,
				"alpha is %.9g, must be in (0, 1)", (double)s->alpha);
	}
	return EBM_STATUS_OK;
}

static enum ebm_status check_hidden(const struct shape *s, const char *origin,
		struct ebm_error *err)
{
	for (uint32_t l = 0; l < s->n_layers; l++) {
		char what[48];
		snprintf(what, sizeof(what), "width of hidden layer %" PRIu32, l);
		enum ebm_status st = check_count(err, origin, OFF_HIDDEN + 4u * l,
				what, s->hidden[l], EBM_MODEL_MAX_WIDTH);
		if (st != EBM_STATUS_OK) {
			return st;
		}
	}
	return EBM_STATUS_OK;
}

/*
 * Every product and sum in 64 bits with an overflow check. Within the
 * documented bounds nothing here can overflow 64 bits (the largest product
 * is 64 * 16 * 2^32 floats), but 32-bit arithmetic would wrap, and the
 * bounds may change: the checks stay.
 */
static enum ebm_status compute_sizes(const struct shape *s, struct sizes *z,
		const char *origin, struct ebm_error *err)
{
	uint64_t in = s->d, np = 0, t;
	memset(z, 0, sizeof(*z));
	for (uint32_t l = 0; l < s->n_layers; l++) {
		if (!mul64(in, s->hidden[l], &t) || !add64(np, t, &np) ||
				!add64(np, s->hidden[l], &np)) {
			goto overflow;
		}
		in = s->hidden[l];
	}
	if (!add64(np, in + 1, &np)) {
		goto overflow;
	}
	z->n_params = np;
	if (!mul64(s->d, s->d, &z->n_prec) ||
			!mul64(s->n_members, np, &z->n_all_params) ||
			!mul64(s->n_ref, s->d, &z->n_ref_rows) ||
			!mul64(s->n_protos, s->d, &z->n_proto_c)) {
		goto overflow;
	}
	uint64_t n = 2u * (uint64_t)s->d;
	if (!add64(n, z->n_prec, &n) || !add64(n, z->n_all_params, &n) ||
			!add64(n, z->n_proto_c, &n) || !add64(n, s->n_protos, &n) ||
			!add64(n, s->n_protos, &n) ||
			!add64(n, z->n_ref_rows, &n) || !add64(n, s->n_ref, &n) ||
			!mul64(n, sizeof(float), &z->blob_bytes)) {
		goto overflow;
	}
	z->n_floats = n;
	return EBM_STATUS_OK;
overflow:
	return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_D,
			"the counts overflow the size computation");
}

static void blob_offsets(struct layout *lay, uint64_t blob, const struct shape *s,
		const struct sizes *z)
{
	lay->mean = blob;
	lay->scale = lay->mean + 4u * (uint64_t)s->d;
	lay->prec = lay->scale + 4u * (uint64_t)s->d;
	lay->params = lay->prec + 4u * z->n_prec;
	lay->protos = lay->params + 4u * z->n_all_params;
	lay->proto_logw = lay->protos + 4u * z->n_proto_c;
	lay->proto_h = lay->proto_logw + 4u * s->n_protos;
	lay->ref_rows = lay->proto_h + 4u * s->n_protos;
	lay->ref_energy = lay->ref_rows + 4u * z->n_ref_rows;
	lay->end = blob + z->blob_bytes;
	lay->size = lay->end + CHECKSUM_BYTES;
}

static uint64_t pad_to_align(uint64_t pos)
{
	return (BLOB_ALIGN - pos % BLOB_ALIGN) % BLOB_ALIGN;
}

/* ======================================================================
 * Content checks shared by the reader and ebm_model_finalize()
 * ==================================================================== */

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

/*
 * A string field: min..max bytes of UTF-8 without control characters
 * (tab and newline allowed when multiline). `offset` is that of its
 * length field; the text starts 4 bytes later.
 */
static enum ebm_status check_text(const char *what, const char *text,
		size_t len, size_t min, size_t max, bool multiline, uint64_t offset,
		const char *origin, struct ebm_error *err)
{
	const uint8_t *s = (const uint8_t *)text;
	if (len < min) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, offset, "%s is empty",
				what);
	}
	if (len > max) {
		return fail_at(err, EBM_STATUS_LIMIT, origin, offset,
				"%s is %zu bytes, over the limit of %zu", what, len, max);
	}
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = ebm_utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			return fail_at(err, EBM_STATUS_FORMAT, origin, offset + 4 + i,
					"%s is not valid UTF-8", what);
		}
		if (is_control(cp) && !(multiline && (cp == '\n' || cp == '\t'))) {
			return fail_at(err, EBM_STATUS_FORMAT, origin, offset + 4 + i,
					"%s contains control character U+%04" PRIX32, what, cp);
		}
		i += n;
	}
	return EBM_STATUS_OK;
}

/*
 * Sorts the names once (util/names.c): that finds duplicates in
 * O(d log d) and gives ebm_model_feature_index() its binary search.
 * names_off is the offset of the first name's length field.
 */
static enum ebm_status index_names(char *const *names, uint32_t d,
		uint64_t names_off, const char *origin, uint32_t **order_out,
		struct ebm_error *err)
{
	const char *const *cn = (const char *const *)names;
	uint32_t *order = ebm_names_sort(cn, d);
	if (order == NULL) {
		return fail_nomem(err, origin);
	}
	/* Report the duplicate that comes first in the file. */
	size_t first;
	size_t dup = ebm_names_duplicate(cn, order, d, &first);
	if (dup != SIZE_MAX) {
		free(order);
		uint64_t off = names_off;
		for (size_t i = 0; i < dup; i++) {
			off += 4 + strlen(names[i]);
		}
		return fail_at(err, EBM_STATUS_FORMAT, origin, off,
				"feature_names[%zu] '%s' repeats feature_names[%zu]", dup,
				names[dup], first);
	}
	if (order_out != NULL) {
		*order_out = order;
	} else {
		free(order);
	}
	return EBM_STATUS_OK;
}

static enum ebm_status check_finite(const float *v, uint64_t n,
		uint64_t offset, const char *section, const char *origin,
		struct ebm_error *err)
{
	for (uint64_t i = 0; i < n; i++) {
		if (!isfinite(v[i])) {
			return fail_at(err, EBM_STATUS_FORMAT, origin, offset + 4 * i,
					"non-finite value in %s[%" PRIu64 "]", section, i);
		}
	}
	return EBM_STATUS_OK;
}

/* Version 2's prototype term: finite centres and log weights, every
 * bandwidth finite and > 0, w_net >= 0, w_proto > 0. */
static enum ebm_status check_protos(const struct ebm_model *m,
		const struct sizes *z, const struct layout *lay, const char *origin,
		struct ebm_error *err)
{
	const struct ebm_proto *p = &m->net.proto;
	enum ebm_status st;
	if (p->n == 0) {
		return EBM_STATUS_OK;
	}
	if (!(isfinite(p->w_net) && p->w_net >= 0.0f)) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, lay->proto_hdr + 4,
				"network weight is %.9g, must be finite and >= 0",
				(double)p->w_net);
	}
	if (!(isfinite(p->w_proto) && p->w_proto > 0.0f)) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, lay->proto_hdr + 8,
				"prototype weight is %.9g, must be finite and > 0",
				(double)p->w_proto);
	}
	if ((st = check_finite(p->c, z->n_proto_c, lay->protos, "protos",
			origin, err)) ||
			(st = check_finite(p->logw, p->n, lay->proto_logw, "proto_logw",
			origin, err))) {
		return st;
	}
	for (uint32_t j = 0; j < p->n; j++) {
		if (!(isfinite(p->h[j]) && p->h[j] > 0.0f)) {
			return fail_at(err, EBM_STATUS_FORMAT, origin,
					lay->proto_h + 4u * j, "proto_h[%" PRIu32 "] is %.9g, "
					"must be finite and > 0", j, (double)p->h[j]);
		}
	}
	return EBM_STATUS_OK;
}

/* The blob: every float finite, scale > 0, P symmetric, energies sorted. */
static enum ebm_status check_values(const struct ebm_model *m,
		const struct sizes *z, const struct layout *lay, const char *origin,
		struct ebm_error *err)
{
	const struct ebm_net *net = &m->net;
	uint64_t d = net->d;
	enum ebm_status st;
	if ((st = check_finite(net->mean, d, lay->mean, "mean", origin, err)) ||
			(st = check_finite(net->scale, d, lay->scale, "scale", origin,
			err))) {
		return st;
	}
	for (uint64_t j = 0; j < d; j++) {
		if (!(net->scale[j] > 0.0f)) {
			return fail_at(err, EBM_STATUS_FORMAT, origin,
					lay->scale + 4 * j, "scale[%" PRIu64 "] is %.9g, must be "
					"> 0", j, (double)net->scale[j]);
		}
	}
	if ((st = check_finite(net->prec, z->n_prec, lay->prec, "prec", origin,
			err))) {
		return st;
	}
	/*
	 * Exactly symmetric: the core computes grad(-0.5 z'Pz) as -P z, which
	 * is only the gradient of the stored energy when P = P'.
	 */
	for (uint64_t i = 1; i < d; i++) {
		for (uint64_t j = 0; j < i; j++) {
			float lo = net->prec[i * d + j], up = net->prec[j * d + i];
			if (lo != up) {
				return fail_at(err, EBM_STATUS_FORMAT, origin,
						lay->prec + 4 * (i * d + j), "prec[%" PRIu64 "][%"
						PRIu64 "] = %.9g differs from prec[%" PRIu64 "][%"
						PRIu64 "] = %.9g (must be symmetric)", i, j,
						(double)lo, j, i, (double)up);
			}
		}
	}
	if ((st = check_finite(net->params, z->n_all_params, lay->params,
			"params", origin, err)) ||
			(st = check_finite(m->ref_rows, z->n_ref_rows, lay->ref_rows,
			"ref_rows", origin, err)) ||
			(st = check_finite(m->ref_energy, m->n_ref, lay->ref_energy,
			"ref_energy", origin, err))) {
		return st;
	}
	if ((st = check_protos(m, z, lay, origin, err))) {
		return st;
	}
	for (uint64_t i = 1; i < m->n_ref; i++) {
		if (m->ref_energy[i] < m->ref_energy[i - 1]) {
			return fail_at(err, EBM_STATUS_FORMAT, origin,
					lay->ref_energy + 4 * i, "ref_energy[%" PRIu64 "] = %.9g "
					"is below ref_energy[%" PRIu64 "] = %.9g (must be "
					"non-decreasing)", i, (double)m->ref_energy[i], i - 1,
					(double)m->ref_energy[i - 1]);
		}
	}
	return EBM_STATUS_OK;
}

static void shape_of(const struct ebm_model *m, struct shape *s)
{
	memset(s, 0, sizeof(*s));
	s->d = m->net.d;
	s->n_members = m->net.n_members;
	s->n_layers = m->net.n_layers;
	s->act = (uint32_t)m->net.act;
	s->n_ref = m->n_ref;
	s->alpha = m->alpha;
	/* The lowest version that holds the model: without prototypes the
	 * file is byte for byte what version 1 wrote. */
	s->n_protos = m->net.proto.n;
	s->version = s->n_protos > 0 ? 2u : 1u;
	if (s->n_layers <= EBM_MODEL_MAX_LAYERS) {
		memcpy(s->hidden, m->net.hidden, s->n_layers * sizeof(uint32_t));
	}
}

/* The file layout of a model in memory; false if it overflows. */
static bool plan(const struct ebm_model *m, const struct shape *s,
		const struct sizes *z, struct layout *lay)
{
	uint64_t pos = FIXED_BYTES + 4u * (uint64_t)s->n_layers;
	lay->objective = pos;
	pos += 4 + (m->objective ? strlen(m->objective) : 0);
	lay->has_names = pos;
	pos += 4;
	lay->names = pos;
	if (m->feature_names != NULL) {
		for (uint32_t i = 0; i < s->d; i++) {
			pos += 4 + strlen(m->feature_names[i]);
		}
	}
	lay->options = pos;
	pos += 4 + (m->options ? strlen(m->options) : 0);
	lay->proto_hdr = pos;
	if (s->version >= 2) {
		pos += PROTO_HDR_BYTES;
	}
	lay->pad = pos;
	pos += pad_to_align(pos);
	if (pos > UINT64_MAX - z->blob_bytes - CHECKSUM_BYTES) {
		return false;
	}
	blob_offsets(lay, pos, s, z);
	return true;
}

enum ebm_status ebm_model_check(const struct ebm_model *m,
		const char *origin, uint32_t **name_order, struct ebm_error *err)
{
	struct shape s;
	struct sizes z;
	struct layout lay;
	enum ebm_status st;
	if (name_order != NULL) {
		*name_order = NULL;
	}
	if (m == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no model given");
	}
	shape_of(m, &s);
	if ((st = check_header(&s, origin, err)) ||
			(st = check_hidden(&s, origin, err)) ||
			(st = compute_sizes(&s, &z, origin, err))) {
		return st;
	}
	const struct ebm_net *net = &m->net;
	if (net->n_params != z.n_params || net->mean == NULL ||
			net->scale == NULL || net->prec == NULL || net->params == NULL ||
			m->ref_rows == NULL || m->ref_energy == NULL) {
		return fail(err, EBM_STATUS_INVALID_ARGUMENT, origin, UINT64_MAX,
				"model is not fully built (arrays missing or n_params "
				"inconsistent with the shape)");
	}
	if (m->feature_names != NULL) {
		for (uint32_t i = 0; i < s.d; i++) {
			if (m->feature_names[i] == NULL) {
				return fail(err, EBM_STATUS_INVALID_ARGUMENT, origin,
						UINT64_MAX, "feature_names[%" PRIu32 "] is missing",
						i);
			}
		}
	}
	if (s.n_protos > EBM_MODEL_MAX_PROTOS) {
		return fail(err, EBM_STATUS_LIMIT, origin, UINT64_MAX,
				"%" PRIu32 " prototypes, over the limit of %u", s.n_protos,
				EBM_MODEL_MAX_PROTOS);
	}
	if (s.n_protos > 0 && (net->proto.c == NULL ||
			net->proto.logw == NULL || net->proto.h == NULL)) {
		return fail(err, EBM_STATUS_INVALID_ARGUMENT, origin, UINT64_MAX,
				"model is not fully built (prototype arrays missing)");
	}
	if (!plan(m, &s, &z, &lay)) {
		return fail(err, EBM_STATUS_LIMIT, origin, UINT64_MAX,
				"the model's size overflows 64 bits");
	}
	const char *objective = m->objective ? m->objective : "";
	const char *options = m->options ? m->options : "";
	if ((st = check_text("objective", objective, strlen(objective), 1,
			EBM_MODEL_MAX_OBJECTIVE, false, lay.objective, origin, err))) {
		return st;
	}
	if (m->feature_names != NULL) {
		uint64_t off = lay.names;
		for (uint32_t i = 0; i < s.d; i++) {
			char what[40];
			const char *name = m->feature_names[i];
			size_t len = strlen(name);
			snprintf(what, sizeof(what), "feature_names[%" PRIu32 "]", i);
			if ((st = check_text(what, name, len, 1, EBM_MODEL_MAX_NAME,
					false, off, origin, err))) {
				return st;
			}
			off += 4 + len;
		}
	}
	if ((st = check_text("training_options", options, strlen(options), 0,
			EBM_MODEL_MAX_OPTIONS, true, lay.options, origin, err))) {
		return st;
	}
	if (lay.size > EBM_MODEL_MAX_FILE_BYTES || lay.size > SIZE_MAX) {
		return fail(err, EBM_STATUS_LIMIT, origin, UINT64_MAX,
				"the model needs %" PRIu64 " bytes, over the file size "
				"limit of %" PRIu64, lay.size,
				(uint64_t)EBM_MODEL_MAX_FILE_BYTES);
	}
	if ((st = check_values(m, &z, &lay, origin, err))) {
		return st;
	}
	if (m->feature_names != NULL) {
		return index_names(m->feature_names, s.d, lay.names, origin,
				name_order, err);
	}
	return EBM_STATUS_OK;
}

/* ======================================================================
 * Writing
 * ==================================================================== */

static uint64_t put_str(uint8_t *p, uint64_t pos, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	put_u32(p + pos, (uint32_t)len);
	if (len > 0) {
		memcpy(p + pos + 4, s, len);
	}
	return pos + 4 + len;
}

static uint64_t put_floats(uint8_t *p, uint64_t pos, const float *v,
		uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		put_f32(p + pos + 4 * i, v[i]);
	}
	return pos + 4 * n;
}

enum ebm_status ebm_model_serialize(const struct ebm_model *m,
		void **out_data, size_t *out_size, char *hex, struct ebm_error *err)
{
	const char *origin = "<model>";
	struct shape s;
	struct sizes z;
	struct layout lay;
	*out_data = NULL;
	*out_size = 0;
	shape_of(m, &s);
	enum ebm_status st = compute_sizes(&s, &z, origin, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	if (!plan(m, &s, &z, &lay) || lay.size > SIZE_MAX) {
		return fail(err, EBM_STATUS_LIMIT, origin, UINT64_MAX,
				"the model is too large to serialize");
	}
	/* calloc: the padding must be zero. */
	uint8_t *p = calloc((size_t)lay.size, 1);
	if (p == NULL) {
		return fail_nomem(err, origin);
	}
	memcpy(p + OFF_MAGIC, EBM_MODEL_MAGIC, 8);
	put_u32(p + OFF_VERSION, s.version);
	put_u32(p + OFF_BOM, BOM_LITTLE);
	put_u64(p + OFF_SIZE, lay.size);
	put_u32(p + OFF_D, s.d);
	put_u32(p + OFF_MEMBERS, s.n_members);
	put_u32(p + OFF_LAYERS, s.n_layers);
	put_u32(p + OFF_ACT, s.act);
	put_u32(p + OFF_NREF, s.n_ref);
	put_f32(p + OFF_ALPHA, s.alpha);
	put_u64(p + OFF_CREATED, m->created);
	put_u64(p + OFF_SEED, m->seed);
	for (uint32_t l = 0; l < s.n_layers; l++) {
		put_u32(p + OFF_HIDDEN + 4 * l, s.hidden[l]);
	}
	uint64_t pos = put_str(p, lay.objective, m->objective);
	put_u32(p + pos, m->feature_names != NULL);
	pos += 4;
	if (m->feature_names != NULL) {
		for (uint32_t i = 0; i < s.d; i++) {
			pos = put_str(p, pos, m->feature_names[i]);
		}
	}
	pos = put_str(p, pos, m->options);
	const struct ebm_proto *pr = &m->net.proto;
	if (s.version >= 2) {
		put_u32(p + pos, pr->n);
		put_f32(p + pos + 4, pr->w_net);
		put_f32(p + pos + 8, pr->w_proto);
	}
	pos = put_floats(p, lay.mean, m->net.mean, s.d);
	pos = put_floats(p, pos, m->net.scale, s.d);
	pos = put_floats(p, pos, m->net.prec, z.n_prec);
	pos = put_floats(p, pos, m->net.params, z.n_all_params);
	if (s.n_protos > 0) {
		pos = put_floats(p, pos, pr->c, z.n_proto_c);
		pos = put_floats(p, pos, pr->logw, s.n_protos);
		pos = put_floats(p, pos, pr->h, s.n_protos);
	}
	pos = put_floats(p, pos, m->ref_rows, z.n_ref_rows);
	pos = put_floats(p, pos, m->ref_energy, s.n_ref);
	digest(p, (size_t)pos, p + pos);
	if (hex != NULL) {
		hex_of(p + pos, hex);
	}
	*out_data = p;
	*out_size = (size_t)lay.size;
	return EBM_STATUS_OK;
}

enum ebm_status ebm_model_write_buffer(const struct ebm_model *m,
		void **out_data, size_t *out_size, struct ebm_error *err)
{
	if (out_data == NULL || out_size == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no output given");
	}
	*out_data = NULL;
	*out_size = 0;
	/* Never write a file the reader would refuse. */
	enum ebm_status st = ebm_model_check(m, "<model>", NULL, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	return ebm_model_serialize(m, out_data, out_size, NULL, err);
}

enum ebm_status ebm_model_write_file(const struct ebm_model *m,
		const char *path, struct ebm_error *err)
{
	void *data;
	size_t size;
	if (path == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no path given");
	}
	enum ebm_status st = ebm_model_write_buffer(m, &data, &size, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	st = ebm_write_file_atomic(path, data, size, err);
	free(data);
	return st;
}

/* ======================================================================
 * Reading
 * ==================================================================== */

struct cursor {
	const uint8_t *p;
	uint64_t pos;
	uint64_t end;        /* start of the checksum */
	const char *origin;
	struct ebm_error *err;
};

static enum ebm_status read_u32(struct cursor *c, const char *what,
		uint32_t *out)
{
	*out = 0; /* defined even on failure (and gcc -O3 can tell) */
	if (c->end - c->pos < 4) {
		return fail_at(c->err, EBM_STATUS_FORMAT, c->origin, c->pos,
				"unexpected end of file reading %s", what);
	}
	*out = get_u32(c->p + c->pos);
	c->pos += 4;
	return EBM_STATUS_OK;
}

/* A length-prefixed string into a new NUL-terminated buffer. */
static enum ebm_status read_str(struct cursor *c, const char *what,
		char **out, size_t *out_len)
{
	uint64_t at = c->pos;
	uint32_t len = 0;
	enum ebm_status st = read_u32(c, what, &len);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	if (len > c->end - c->pos) {
		return fail_at(c->err, EBM_STATUS_FORMAT, c->origin, at,
				"string length %" PRIu32 " runs past the end of the file",
				len);
	}
	char *s = malloc((size_t)len + 1);
	if (s == NULL) {
		return fail_nomem(c->err, c->origin);
	}
	memcpy(s, c->p + c->pos, len);
	s[len] = '\0';
	c->pos += len;
	*out = s;
	*out_len = len;
	return EBM_STATUS_OK;
}

static void get_floats(float *v, const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		v[i] = get_f32(p + 4 * i);
	}
}

/* Magic, version, byte order, size and checksum, in that order. */
static enum ebm_status check_envelope(const uint8_t *p, size_t size,
		const char *origin, struct ebm_error *err)
{
	if (size == 0) {
		return fail(err, EBM_STATUS_FORMAT, origin, 0, "empty file");
	}
	if (size < MIN_FILE_BYTES) {
		return fail(err, EBM_STATUS_FORMAT, origin, size,
				"too short: %zu bytes, a model file has at least %u", size,
				MIN_FILE_BYTES);
	}
	if ((uint64_t)size > EBM_MODEL_MAX_FILE_BYTES) {
		return fail(err, EBM_STATUS_LIMIT, origin, UINT64_MAX,
				"file is %zu bytes, over the limit of %" PRIu64, size,
				(uint64_t)EBM_MODEL_MAX_FILE_BYTES);
	}
	if (memcmp(p + OFF_MAGIC, EBM_MODEL_MAGIC, 8) != 0) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_MAGIC,
				"bad magic: not an ebm model file");
	}
	uint32_t version = get_u32(p + OFF_VERSION);
	uint32_t bom = get_u32(p + OFF_BOM);
	if (version < 1 || version > EBM_MODEL_FORMAT_VERSION) {
		/* A big-endian writer's version 1 reads as 0x01000000 here. */
		if (bom == BOM_BIG) {
			return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_BOM,
					"file is big-endian");
		}
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_VERSION,
				"unsupported format version %" PRIu32 " (this build reads 1 "
				"to %u)", version, EBM_MODEL_FORMAT_VERSION);
	}
	if (bom == BOM_BIG) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_BOM,
				"file is big-endian");
	}
	if (bom != BOM_LITTLE) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_BOM,
				"bad byte-order mark 0x%08" PRIx32, bom);
	}
	uint64_t declared = get_u64(p + OFF_SIZE);
	if (declared > (uint64_t)size) {
		return fail(err, EBM_STATUS_FORMAT, origin, size,
				"truncated: header says %" PRIu64 " bytes, file has %zu",
				declared, size);
	}
	if (declared < (uint64_t)size) {
		return fail(err, EBM_STATUS_FORMAT, origin, declared,
				"%" PRIu64 " bytes after the declared end (header says %"
				PRIu64 " bytes)", (uint64_t)size - declared, declared);
	}
	uint8_t sum[CHECKSUM_BYTES];
	digest(p, size - CHECKSUM_BYTES, sum);
	if (memcmp(sum, p + size - CHECKSUM_BYTES, CHECKSUM_BYTES) != 0) {
		return fail_at(err, EBM_STATUS_FORMAT, origin,
				size - CHECKSUM_BYTES, "checksum mismatch: file is corrupt");
	}
	return EBM_STATUS_OK;
}

/* Steps over one length-prefixed string. */
static enum ebm_status skip_str(struct cursor *c, const char *what)
{
	uint32_t len;
	enum ebm_status st = read_u32(c, what, &len);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	if (len > c->end - c->pos) {
		return fail_at(c->err, EBM_STATUS_FORMAT, c->origin, c->pos - 4,
				"%s: %" PRIu32 " bytes run past the end of the file", what,
				len);
	}
	c->pos += len;
	return EBM_STATUS_OK;
}

/*
 * Version 2: reads and checks the prototype count, which follows the
 * strings, by stepping over them on a copy of the cursor (parse() reads
 * and checks them afterwards), so that the blob can be sized first.
 */
static enum ebm_status peek_protos(const struct cursor *c0, struct shape *s,
		struct layout *lay)
{
	struct cursor c = *c0;
	enum ebm_status st;
	uint32_t has_names = 0;
	if ((st = skip_str(&c, "the objective")) ||
			(st = read_u32(&c, "has_feature_names", &has_names))) {
		return st;
	}
	if (has_names > 1) {
		return fail_at(c.err, EBM_STATUS_FORMAT, c.origin, c.pos - 4,
				"has_feature_names is %" PRIu32 ", must be 0 or 1",
				has_names);
	}
	for (uint32_t i = 0; has_names && i < s->d; i++) {
		if ((st = skip_str(&c, "a feature name"))) {
			return st;
		}
	}
	if ((st = skip_str(&c, "the training options"))) {
		return st;
	}
	lay->proto_hdr = c.pos;
	if ((st = read_u32(&c, "the prototype count", &s->n_protos))) {
		return st;
	}
	if (s->n_protos == 0) {
		return fail_at(c.err, EBM_STATUS_FORMAT, c.origin, lay->proto_hdr,
				"prototype count is 0 in a version-2 file, must be at "
				"least 1");
	}
	if (s->n_protos > EBM_MODEL_MAX_PROTOS) {
		return fail_at(c.err, EBM_STATUS_LIMIT, c.origin, lay->proto_hdr,
				"prototype count is %" PRIu32 ", over the limit of %u",
				s->n_protos, EBM_MODEL_MAX_PROTOS);
	}
	if (PROTO_HDR_BYTES - 4 > c.end - c.pos) {
		return fail_at(c.err, EBM_STATUS_FORMAT, c.origin, c.pos,
				"unexpected end of file in the prototype header");
	}
	return EBM_STATUS_OK;
}

/* Fills m (allocated, zeroed) from a file that passed check_envelope. */
static enum ebm_status parse(const uint8_t *p, size_t size,
		const char *origin, struct ebm_model *m, struct ebm_error *err)
{
	struct cursor c = {
		.p = p, .pos = FIXED_BYTES, .end = size - CHECKSUM_BYTES,
		.origin = origin, .err = err,
	};
	struct shape s;
	struct sizes z;
	struct layout lay;
	enum ebm_status st;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.version = get_u32(p + OFF_VERSION);
	s.d = get_u32(p + OFF_D);
	s.n_members = get_u32(p + OFF_MEMBERS);
	s.n_layers = get_u32(p + OFF_LAYERS);
	s.act = get_u32(p + OFF_ACT);
	s.n_ref = get_u32(p + OFF_NREF);
	s.alpha = get_f32(p + OFF_ALPHA);
	if ((st = check_header(&s, origin, err))) {
		return st;
	}
	for (uint32_t l = 0; l < s.n_layers; l++) {
		if ((st = read_u32(&c, "the hidden widths", &s.hidden[l]))) {
			return st;
		}
	}
	if ((st = check_hidden(&s, origin, err))) {
		return st;
	}
	/* Version 2: the prototype count sits after the strings; find it
	 * before sizing the blob (the strings are re-read below). */
	if (s.version >= 2 && (st = peek_protos(&c, &s, &lay))) {
		return st;
	}
	if ((st = compute_sizes(&s, &z, origin, err))) {
		return st;
	}
	/*
	 * Refuse counts the file cannot hold before allocating anything they
	 * size: a forged header must not make us allocate gigabytes.
	 */
	if (z.blob_bytes > c.end - c.pos) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, OFF_D,
				"the counts imply %" PRIu64 " bytes of floats, but only %"
				PRIu64 " bytes remain in the file", z.blob_bytes,
				c.end - c.pos);
	}
	if (!ebm_net_init(&m->net, s.d, s.n_members, s.n_layers, s.hidden,
			(enum ebm_act)s.act) ||
			!ebm_proto_init(&m->net.proto, s.n_protos, s.d)) {
		return fail_nomem(err, origin);
	}
	m->alpha = s.alpha;
	m->created = get_u64(p + OFF_CREATED);
	m->seed = get_u64(p + OFF_SEED);
	m->n_ref = s.n_ref;
	m->ref_rows = ebm_alloc_array((size_t)z.n_ref_rows, sizeof(float));
	m->ref_energy = ebm_alloc_array(s.n_ref, sizeof(float));
	if (m->ref_rows == NULL || m->ref_energy == NULL) {
		return fail_nomem(err, origin);
	}

	lay.objective = c.pos;
	if ((st = read_str(&c, "the objective", &m->objective, &len)) ||
			(st = check_text("objective", m->objective, len, 1,
			EBM_MODEL_MAX_OBJECTIVE, false, lay.objective, origin, err))) {
		return st;
	}
	lay.has_names = c.pos;
	uint32_t has_names = 0;
	if ((st = read_u32(&c, "has_feature_names", &has_names))) {
		return st;
	}
	if (has_names > 1) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, lay.has_names,
				"has_feature_names is %" PRIu32 ", must be 0 or 1",
				has_names);
	}
	lay.names = c.pos;
	if (has_names) {
		m->feature_names = calloc(s.d, sizeof(char *));
		if (m->feature_names == NULL) {
			return fail_nomem(err, origin);
		}
		for (uint32_t i = 0; i < s.d; i++) {
			char what[40];
			uint64_t at = c.pos;
			snprintf(what, sizeof(what), "feature_names[%" PRIu32 "]", i);
			if ((st = read_str(&c, what, &m->feature_names[i], &len)) ||
					(st = check_text(what, m->feature_names[i], len, 1,
					EBM_MODEL_MAX_NAME, false, at, origin, err))) {
				return st;
			}
		}
	}
	lay.options = c.pos;
	if ((st = read_str(&c, "the training options", &m->options, &len)) ||
			(st = check_text("training_options", m->options, len, 0,
			EBM_MODEL_MAX_OPTIONS, true, lay.options, origin, err))) {
		return st;
	}
	lay.proto_hdr = c.pos;
	if (s.version >= 2) {
		/* n was checked by peek_protos() */
		m->net.proto.w_net = get_f32(p + c.pos + 4);
		m->net.proto.w_proto = get_f32(p + c.pos + 8);
		c.pos += PROTO_HDR_BYTES;
	}
	lay.pad = c.pos;
	uint64_t n_pad = pad_to_align(c.pos);
	if (n_pad > c.end - c.pos) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, c.pos,
				"unexpected end of file in the padding");
	}
	for (uint64_t i = 0; i < n_pad; i++) {
		if (p[c.pos + i] != 0) {
			return fail_at(err, EBM_STATUS_FORMAT, origin, c.pos + i,
					"padding byte is 0x%02x, must be 0", p[c.pos + i]);
		}
	}
	c.pos += n_pad;
	if (z.blob_bytes > c.end - c.pos) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, c.pos,
				"the counts imply %" PRIu64 " bytes of floats, but only %"
				PRIu64 " bytes remain before the checksum", z.blob_bytes,
				c.end - c.pos);
	}
	if (z.blob_bytes < c.end - c.pos) {
		return fail_at(err, EBM_STATUS_FORMAT, origin, c.pos + z.blob_bytes,
				"the floats end %" PRIu64 " bytes before the checksum",
				c.end - c.pos - z.blob_bytes);
	}
	blob_offsets(&lay, c.pos, &s, &z);
	get_floats(m->net.mean, p + lay.mean, s.d);
	get_floats(m->net.scale, p + lay.scale, s.d);
	get_floats(m->net.prec, p + lay.prec, z.n_prec);
	get_floats(m->net.params, p + lay.params, z.n_all_params);
	if (s.n_protos > 0) {
		get_floats(m->net.proto.c, p + lay.protos, z.n_proto_c);
		get_floats(m->net.proto.logw, p + lay.proto_logw, s.n_protos);
		get_floats(m->net.proto.h, p + lay.proto_h, s.n_protos);
		ebm_proto_update(&m->net.proto, s.d);
	}
	get_floats(m->ref_rows, p + lay.ref_rows, z.n_ref_rows);
	get_floats(m->ref_energy, p + lay.ref_energy, s.n_ref);
	if ((st = check_values(m, &z, &lay, origin, err))) {
		return st;
	}
	if (m->feature_names != NULL && (st = index_names(m->feature_names, s.d,
			lay.names, origin, &m->name_order, err))) {
		return st;
	}
	hex_of(p + lay.end, m->checksum);
	return EBM_STATUS_OK;
}

enum ebm_status ebm_model_load_buffer(const void *data, size_t size,
		const char *origin, struct ebm_model **out, struct ebm_error *err)
{
	if (out == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no output given");
	}
	*out = NULL;
	if (origin == NULL) {
		origin = "<buffer>";
	}
	if (data == NULL && size > 0) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"%s: no data given", origin);
	}
	const uint8_t *p = data;
	enum ebm_status st = check_envelope(p, size, origin, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	struct ebm_model *m = ebm_model_alloc();
	st = parse(p, size, origin, m, err);
	if (st != EBM_STATUS_OK) {
		ebm_model_destroy(m);
		return st;
	}
	*out = m;
	return EBM_STATUS_OK;
}

enum ebm_status ebm_model_load_file(const char *path, struct ebm_model **out,
		struct ebm_error *err)
{
	enum ebm_status st = EBM_STATUS_OK;
	uint8_t *data = NULL;
	struct stat sb;
	if (out == NULL || path == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no path or output given");
	}
	*out = NULL;
	/* O_NONBLOCK: a FIFO dropped among the models must not hang us. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		return ebm_error_set_errno(err, errno, "%s: cannot open", path);
	}
	if (fstat(fd, &sb) != 0) {
		st = ebm_error_set_errno(err, errno, "%s: cannot stat", path);
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		st = ebm_error_set_errno(err, EISDIR, "%s: cannot read", path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		st = ebm_error_set(err, EBM_STATUS_IO, "%s: not a regular file",
				path);
		goto out;
	}
	if (sb.st_size < 0 || (uint64_t)sb.st_size > EBM_MODEL_MAX_FILE_BYTES ||
			(uint64_t)sb.st_size > SIZE_MAX) {
		st = fail(err, EBM_STATUS_LIMIT, path, UINT64_MAX,
				"file is %jd bytes, over the limit of %" PRIu64,
				(intmax_t)sb.st_size, (uint64_t)EBM_MODEL_MAX_FILE_BYTES);
		goto out;
	}
	size_t size = (size_t)sb.st_size;
	data = malloc(size ? size : 1);
	if (data == NULL) {
		st = fail_nomem(err, path);
		goto out;
	}
	/* A file that shrinks meanwhile is read as far as it goes; the size
	 * check in the header then reports it as truncated. */
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, data + got, size - got);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			st = ebm_error_set_errno(err, errno, "%s: read failed", path);
			goto out;
		}
		if (r == 0) {
			break;
		}
		got += (size_t)r;
	}
	st = ebm_model_load_buffer(data, got, path, out, err);
out:
	free(data);
	close(fd);
	return st;
}
