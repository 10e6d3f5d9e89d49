/*
 * test-model-format.c — the model file: round trips through memory and
 * disk, the atomic writer, and one test per rejection message of the
 * reader.
 *
 * Files are produced two ways: by the library (ebm_model_write_buffer) and
 * by emit() below, an independent writer that follows the layout in
 * include/ebm/model.h byte by byte. The two must agree on a valid model;
 * emit() can also produce every kind of malformed file, with a correct
 * checksum so that structural errors are reachable past the checksum check.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

#include "model/model.h"

#define ANY_OFFSET (UINT64_MAX - 1)

/* ======================================================================
 * Byte helpers
 * ==================================================================== */

static void w32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void w64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void wf32(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	w32(p, u);
}

/* Recomputes the trailing checksum after a patch. */
static void reseal(uint8_t *buf, size_t size)
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, size - 16));
	memcpy(buf + size - 16, c.digest, 16);
}

/* Patches a u32 at `off` and reseals. */
static void patch_u32(uint8_t *buf, size_t size, size_t off, uint32_t v)
{
	w32(buf + off, v);
	reseal(buf, size);
}

static void patch_f32(uint8_t *buf, size_t size, size_t off, float v)
{
	wf32(buf + off, v);
	reseal(buf, size);
}

/* ======================================================================
 * emit(): an independent writer of (possibly malformed) files
 * ==================================================================== */

struct spec {
	char magic[9];
	uint32_t version, bom;
	int64_t size_delta;          /* added to the true size in the header */
	uint32_t d, n_members, n_layers, act, n_ref;
	float alpha;
	uint64_t created, seed;
	uint32_t hidden[16];
	const char *objective;
	uint32_t has_names;
	const char *names[8];
	const char *options;
	uint8_t pad_byte;
	float *blob;                 /* owned */
	size_t n_blob;
	size_t cut_body_at;          /* 0: whole body; else body truncated */
};

/* The default small model: d 3, K 2, L 2 (4, 3), n_ref 5, 105 floats. */
enum {
	S_MEAN = 0, S_SCALE = 3, S_PREC = 6, S_PARAMS = 15, S_REF_ROWS = 85,
	S_REF_ENERGY = 100, S_N_BLOB = 105,
	/* byte offsets in the default file */
	O_OBJECTIVE = 72, O_HAS_NAMES = 79, O_NAMES = 83, O_OPTIONS = 104,
	O_PAD = 126, O_BLOB = 128, O_END = 548, O_SIZE = 564,
};

static void spec_default(struct spec *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->magic, "EBMMODEL", 9);
	s->version = 1;
	s->bom = 0x01020304u;
	s->d = 3;
	s->n_members = 2;
	s->n_layers = 2;
	s->hidden[0] = 4;
	s->hidden[1] = 3;
	s->act = 0;
	s->n_ref = 5;
	s->alpha = 0.05f;
	s->created = 1700000000u;
	s->seed = 42;
	s->objective = "dsm";
	s->has_names = 1;
	s->names[0] = "cpu";
	s->names[1] = "mem";
	s->names[2] = "net";
	s->options = "epochs=3\nlr=0.001\n";
	s->n_blob = S_N_BLOB;
	s->blob = calloc(S_N_BLOB, sizeof(float));
	float *b = s->blob;
	b[S_MEAN + 0] = 0.5f;
	b[S_MEAN + 1] = -1.0f;
	b[S_MEAN + 2] = 2.0f;
	b[S_SCALE + 0] = 1.0f;
	b[S_SCALE + 1] = 2.0f;
	b[S_SCALE + 2] = 0.5f;
	static const float prec[9] = { 1, 0.1f, 0, 0.1f, 1, 0.2f, 0, 0.2f, 1 };
	memcpy(b + S_PREC, prec, sizeof(prec));
	for (int i = 0; i < 70; i++) {
		b[S_PARAMS + i] = 0.01f * (float)(i % 13) - 0.05f;
	}
	for (int i = 0; i < 15; i++) {
		b[S_REF_ROWS + i] = (float)i * 0.25f - 1.0f;
	}
	static const float e[5] = { -1.0f, -0.5f, 0.0f, 0.5f, 2.0f };
	memcpy(b + S_REF_ENERGY, e, sizeof(e));
}

static void spec_finish(struct spec *s)
{
	free(s->blob);
	s->blob = NULL;
}

static size_t put_s(uint8_t *p, size_t pos, const char *str)
{
	size_t n = strlen(str);
	if (p != NULL) {
		w32(p + pos, (uint32_t)n);
		memcpy(p + pos + 4, str, n);
	}
	return pos + 4 + n;
}

/* The body in p (NULL: just measure); returns the body length. */
static size_t body(const struct spec *s, uint8_t *p)
{
	if (p != NULL) {
		memcpy(p, s->magic, 8);
		w32(p + 8, s->version);
		w32(p + 12, s->bom);
		w32(p + 24, s->d);
		w32(p + 28, s->n_members);
		w32(p + 32, s->n_layers);
		w32(p + 36, s->act);
		w32(p + 40, s->n_ref);
		wf32(p + 44, s->alpha);
		w64(p + 48, s->created);
		w64(p + 56, s->seed);
	}
	size_t pos = 64;
	uint32_t n_hidden = s->n_layers < 16 ? s->n_layers : 16;
	for (uint32_t l = 0; l < n_hidden; l++, pos += 4) {
		if (p != NULL) {
			w32(p + pos, s->hidden[l]);
		}
	}
	pos = put_s(p, pos, s->objective);
	if (p != NULL) {
		w32(p + pos, s->has_names);
	}
	pos += 4;
	if (s->has_names == 1) {
		for (uint32_t i = 0; i < s->d && i < 8; i++) {
			pos = put_s(p, pos, s->names[i]);
		}
	}
	pos = put_s(p, pos, s->options);
	while (pos % 16 != 0) {
		if (p != NULL) {
			p[pos] = s->pad_byte;
		}
		pos++;
	}
	for (size_t i = 0; i < s->n_blob; i++, pos += 4) {
		if (p != NULL) {
			wf32(p + pos, s->blob[i]);
		}
	}
	return pos;
}

/* A whole file with a valid checksum; free() it. */
static uint8_t *emit(const struct spec *s, size_t *size)
{
	size_t n = body(s, NULL);
	uint8_t *p = calloc(n + 16, 1);
	body(s, p);
	if (s->cut_body_at != 0) {
		n = s->cut_body_at;
	}
	*size = n + 16;
	w64(p + 16, (uint64_t)((int64_t)*size + s->size_delta));
	reseal(p, *size);
	return p;
}

/* ======================================================================
 * Models built in memory
 * ==================================================================== */

static char *dup_s(const char *s)
{
	char *p = malloc(strlen(s) + 1);
	strcpy(p, s);
	return p;
}

/* A model with deterministic, valid contents (not finalized). */
static struct ebm_model *build_raw(uint32_t d, uint32_t n_members,
		uint32_t n_layers, const uint32_t *hidden, uint32_t n_ref,
		bool names)
{
	struct ebm_model *m = ebm_model_alloc();
	ck_assert(ebm_net_init(&m->net, d, n_members, n_layers, hidden,
			EBM_ACT_SOFTPLUS));
	for (uint32_t j = 0; j < d; j++) {
		m->net.mean[j] = 0.25f * (float)j - 1.0f;
		m->net.scale[j] = 1.0f + 0.125f * (float)j;
		for (uint32_t k = 0; k < d; k++) {
			m->net.prec[j * d + k] = j == k ? 1.0f :
					0.01f * (float)((j + k) % 5);
		}
	}
	size_t np = m->net.n_params * n_members;
	for (size_t i = 0; i < np; i++) {
		m->net.params[i] = 0.001f * (float)(i % 101) - 0.05f;
	}
	m->alpha = 0.01f;
	m->created = 1234567890u;
	m->seed = 7;
	m->objective = dup_s("cd");
	m->options = dup_s("hidden=8\nseed=7\n");
	m->n_ref = n_ref;
	m->ref_rows = malloc((size_t)n_ref * d * sizeof(float));
	m->ref_energy = malloc(n_ref * sizeof(float));
	for (size_t i = 0; i < (size_t)n_ref * d; i++) {
		m->ref_rows[i] = 0.5f * (float)(i % 17) - 3.0f;
	}
	for (uint32_t i = 0; i < n_ref; i++) {
		m->ref_energy[i] = -2.0f + 0.5f * (float)(i / 2);  /* with ties */
	}
	if (names) {
		m->feature_names = calloc(d, sizeof(char *));
		for (uint32_t j = 0; j < d; j++) {
			char buf[32];
			snprintf(buf, sizeof(buf), "f%02u_%c", (unsigned)(d - j),
					'a' + (int)(j % 26));
			m->feature_names[j] = dup_s(buf);
		}
	}
	return m;
}

static struct ebm_model *build(uint32_t d, uint32_t n_members,
		uint32_t n_layers, const uint32_t *hidden, uint32_t n_ref,
		bool names)
{
	struct ebm_model *m = build_raw(d, n_members, n_layers, hidden, n_ref,
			names);
	struct ebm_error err;
	enum ebm_status st = ebm_model_finalize(m, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "finalize: %s", err.message);
	return m;
}

static struct ebm_model *build_small(bool names)
{
	static const uint32_t hidden[2] = { 5, 4 };
	return build(4, 2, 2, hidden, 7, names);
}

/* ======================================================================
 * Assertions
 * ==================================================================== */

static void expect_reject(const uint8_t *buf, size_t size,
		enum ebm_status code, const char *message, uint64_t offset)
{
	struct ebm_model *m = (struct ebm_model *)&m;  /* not NULL */
	struct ebm_error err;
	enum ebm_status st = ebm_model_load_buffer(buf, size, "t.ebm", &m, &err);
	ck_assert_msg(st == code, "status %s, want %s (%s)",
			ebm_status_string(st), ebm_status_string(code), err.message);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, code);
	ck_assert_str_eq(err.message, message);
	if (offset != ANY_OFFSET) {
		ck_assert_uint_eq(err.offset, offset);
	}
}

static void expect_spec_reject(const struct spec *s, enum ebm_status code,
		const char *message, uint64_t offset)
{
	size_t size;
	uint8_t *buf = emit(s, &size);
	expect_reject(buf, size, code, message, offset);
	free(buf);
}

static struct ebm_model *load_ok(const void *buf, size_t size)
{
	struct ebm_model *m = NULL;
	struct ebm_error err;
	enum ebm_status st = ebm_model_load_buffer(buf, size, NULL, &m, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "load: %s", err.message);
	ck_assert_ptr_nonnull(m);
	return m;
}

static void serialize(const struct ebm_model *m, uint8_t **buf,
		size_t *size)
{
	struct ebm_error err;
	void *p;
	enum ebm_status st = ebm_model_write_buffer(m, &p, size, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "write: %s", err.message);
	*buf = p;
}

static void assert_same_model(const struct ebm_model *a,
		const struct ebm_model *b)
{
	size_t d = ebm_model_n_features(a);
	ck_assert_uint_eq(ebm_model_n_features(b), d);
	ck_assert_uint_eq(ebm_model_n_members(a), ebm_model_n_members(b));
	ck_assert_uint_eq(ebm_model_n_layers(a), ebm_model_n_layers(b));
	for (size_t l = 0; l < ebm_model_n_layers(a); l++) {
		ck_assert_uint_eq(ebm_model_hidden(a, l), ebm_model_hidden(b, l));
	}
	ck_assert_str_eq(ebm_model_activation(a), ebm_model_activation(b));
	ck_assert(ebm_model_alpha(a) == ebm_model_alpha(b));
	ck_assert_str_eq(ebm_model_objective(a), ebm_model_objective(b));
	ck_assert_uint_eq(ebm_model_created(a), ebm_model_created(b));
	ck_assert_uint_eq(ebm_model_seed(a), ebm_model_seed(b));
	ck_assert_str_eq(ebm_model_checksum(a), ebm_model_checksum(b));
	ck_assert_str_eq(ebm_model_training_options(a),
			ebm_model_training_options(b));
	for (size_t j = 0; j < d; j++) {
		const char *na = ebm_model_feature_name(a, j);
		const char *nb = ebm_model_feature_name(b, j);
		ck_assert((na == NULL) == (nb == NULL));
		if (na != NULL) {
			ck_assert_str_eq(na, nb);
		}
	}
	size_t n_ref = ebm_model_n_ref(a);
	ck_assert_uint_eq(ebm_model_n_ref(b), n_ref);
	ck_assert_mem_eq(ebm_model_ref_rows(a), ebm_model_ref_rows(b),
			n_ref * d * sizeof(float));
	ck_assert_mem_eq(ebm_model_ref_energies(a), ebm_model_ref_energies(b),
			n_ref * sizeof(float));
	ck_assert_mem_eq(a->net.mean, b->net.mean, d * sizeof(float));
	ck_assert_mem_eq(a->net.scale, b->net.scale, d * sizeof(float));
	ck_assert_mem_eq(a->net.prec, b->net.prec, d * d * sizeof(float));
	ck_assert_uint_eq(a->net.n_params, b->net.n_params);
	ck_assert_mem_eq(a->net.params, b->net.params,
			a->net.n_params * a->net.n_members * sizeof(float));
}

static void hex16(const uint8_t *d, char *hex)
{
	for (int i = 0; i < 16; i++) {
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	}
}

/* ======================================================================
 * Round trips
 * ==================================================================== */

static void roundtrip_buffer(bool names)
{
	struct ebm_model *a = build_small(names);
	uint8_t *buf, *buf2;
	size_t size, size2;
	serialize(a, &buf, &size);
	struct ebm_model *b = load_ok(buf, size);
	assert_same_model(a, b);
	serialize(b, &buf2, &size2);
	ck_assert_uint_eq(size, size2);
	ck_assert_mem_eq(buf, buf2, size);
	/* The checksum is the last 16 bytes, as hex. */
	char hex[33];
	hex16(buf + size - 16, hex);
	ck_assert_str_eq(ebm_model_checksum(b), hex);
	ck_assert_uint_eq(strlen(ebm_model_checksum(a)), 32);
	ck_assert_uint_eq(size % 4, 0);
	free(buf);
	free(buf2);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
}

START_TEST(t_roundtrip_names)
{
	roundtrip_buffer(true);
}
END_TEST

START_TEST(t_roundtrip_no_names)
{
	roundtrip_buffer(false);
	struct ebm_model *m = build_small(false);
	ck_assert_ptr_null(ebm_model_feature_name(m, 0));
	ck_assert_int_eq(ebm_model_feature_index(m, "f04_a"), -1);
	ebm_model_destroy(m);
}
END_TEST

/* The library writer and emit() agree byte for byte on a valid model. */
START_TEST(t_spec_matches_writer)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	ck_assert_uint_eq(size, O_SIZE);
	struct ebm_model *m = load_ok(buf, size);
	uint8_t *buf2;
	size_t size2;
	serialize(m, &buf2, &size2);
	ck_assert_uint_eq(size2, size);
	ck_assert_mem_eq(buf2, buf, size);
	ck_assert_uint_eq(ebm_model_n_features(m), 3);
	ck_assert_str_eq(ebm_model_feature_name(m, 2), "net");
	ck_assert_str_eq(ebm_model_objective(m), "dsm");
	ck_assert_str_eq(ebm_model_activation(m), "silu");
	ck_assert_str_eq(ebm_model_training_options(m), "epochs=3\nlr=0.001\n");
	ck_assert_uint_eq(ebm_model_created(m), 1700000000u);
	ck_assert_uint_eq(ebm_model_seed(m), 42);
	ck_assert(ebm_model_alpha(m) == 0.05f);
	ck_assert_uint_eq(ebm_model_hidden(m, 1), 3);
	ck_assert_uint_eq(ebm_model_hidden(m, 2), 0);
	ck_assert(ebm_model_median_energy(m) == 0.0f);
	ck_assert(ebm_model_ref_rows(m)[14] == 2.5f);
	free(buf);
	free(buf2);
	ebm_model_destroy(m);
	spec_finish(&s);
}
END_TEST

/*
 * The worked example of docs/model-format.md, byte for byte: any change
 * to the writer's output for the same model is a format change.
 */
START_TEST(t_golden_file)
{
	static const uint32_t hidden[1] = { 2 };
	struct ebm_model *m = ebm_model_alloc();
	ck_assert(ebm_net_init(&m->net, 2, 1, 1, hidden, EBM_ACT_SILU));
	m->net.prec[0] = 1.0f;
	m->net.prec[3] = 1.0f;
	m->alpha = 0.01f;
	m->objective = dup_s("dsm");
	m->n_ref = 1;
	m->ref_rows = calloc(2, sizeof(float));
	m->ref_energy = calloc(1, sizeof(float));
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_OK);
	ck_assert_str_eq(ebm_model_checksum(m),
			"9e15e368cf9cd6f3fec383cbbd7bcc8d");
	uint8_t *buf;
	size_t size;
	serialize(m, &buf, &size);
	ck_assert_uint_eq(size, 192);
	static const uint8_t head[0x50] = {
		0x45, 0x42, 0x4d, 0x4d, 0x4f, 0x44, 0x45, 0x4c,
		0x01, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,
		0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x0a, 0xd7, 0x23, 0x3c,
		[0x40] = 0x02, [0x44] = 0x03, [0x48] = 0x64, 0x73, 0x6d,
	};
	ck_assert_mem_eq(buf, head, sizeof(head));
	ck_assert_str_eq(ebm_model_training_options(m), "");
	free(buf);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_feature_index)
{
	static const uint32_t hidden[1] = { 3 };
	struct ebm_model *m = build(40, 1, 1, hidden, 3, true);
	for (uint32_t j = 0; j < 40; j++) {
		const char *name = ebm_model_feature_name(m, j);
		ck_assert_int_eq(ebm_model_feature_index(m, name), (long)j);
	}
	ck_assert_int_eq(ebm_model_feature_index(m, "nope"), -1);
	ck_assert_int_eq(ebm_model_feature_index(m, ""), -1);
	ck_assert_ptr_null(ebm_model_feature_name(m, 40));
	uint8_t *buf;
	size_t size;
	serialize(m, &buf, &size);
	struct ebm_model *b = load_ok(buf, size);
	for (uint32_t j = 0; j < 40; j++) {
		const char *name = ebm_model_feature_name(b, j);
		ck_assert_int_eq(ebm_model_feature_index(b, name), (long)j);
	}
	free(buf);
	ebm_model_destroy(m);
	ebm_model_destroy(b);
}
END_TEST

START_TEST(t_roundtrip_shapes)
{
	/* Several shapes, so every section length and padding case is hit. */
	static const uint32_t hidden[3] = { 7, 1, 9 };
	for (uint32_t d = 1; d <= 6; d++) {
		for (uint32_t layers = 1; layers <= 3; layers++) {
			struct ebm_model *a = build(d, 1 + d % 3, layers, hidden,
					1 + d * layers, d % 2 == 0);
			uint8_t *buf, *buf2;
			size_t size, size2;
			serialize(a, &buf, &size);
			struct ebm_model *b = load_ok(buf, size);
			assert_same_model(a, b);
			serialize(b, &buf2, &size2);
			ck_assert_uint_eq(size, size2);
			ck_assert_mem_eq(buf, buf2, size);
			free(buf);
			free(buf2);
			ebm_model_destroy(a);
			ebm_model_destroy(b);
		}
	}
}
END_TEST

/* ---- files ------------------------------------------------------------- */

static char tmp_dir[256];

static void make_tmp_dir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/ebm-test-XXXXXX",
			base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void remove_tree(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		return;
	}
	if (S_ISDIR(sb.st_mode)) {
		DIR *dir = opendir(path);
		struct dirent *e;
		while (dir != NULL && (e = readdir(dir)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
				continue;
			}
			char sub[1024];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			remove_tree(sub);
		}
		if (dir != NULL) {
			closedir(dir);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Names in dir, other than . and .., joined with ','. */
static void list_dir(const char *path, char *out, size_t cap)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	out[0] = '\0';
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			continue;
		}
		if (out[0] != '\0') {
			strncat(out, ",", cap - strlen(out) - 1);
		}
		strncat(out, e->d_name, cap - strlen(out) - 1);
	}
	closedir(dir);
}

static uint8_t *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*size = (size_t)n;
	return p;
}

static void spit(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, size, f), size);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(t_roundtrip_file)
{
	char path[512], names[1024];
	struct ebm_error err;
	make_tmp_dir();
	snprintf(path, sizeof(path), "%s/web.ebm", tmp_dir);
	struct ebm_model *a = build_small(true);
	mode_t old = umask(022);
	ck_assert_int_eq(ebm_model_write_file(a, path, &err), EBM_STATUS_OK);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0644);
	struct ebm_model *b = NULL;
	ck_assert_msg(ebm_model_load_file(path, &b, &err) == EBM_STATUS_OK,
			"%s", err.message);
	assert_same_model(a, b);
	/* The file is exactly what write_buffer produces. */
	uint8_t *buf, *disk;
	size_t size, disk_size;
	serialize(a, &buf, &size);
	disk = slurp(path, &disk_size);
	ck_assert_uint_eq(disk_size, size);
	ck_assert_mem_eq(disk, buf, size);
	list_dir(tmp_dir, names, sizeof(names));
	ck_assert_str_eq(names, "web.ebm");
	/* Replacing an existing file, under a stricter umask. */
	umask(077);
	struct ebm_model *c = build_small(false);
	ck_assert_int_eq(ebm_model_write_file(c, path, &err), EBM_STATUS_OK);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	struct ebm_model *d = NULL;
	ck_assert_int_eq(ebm_model_load_file(path, &d, &err), EBM_STATUS_OK);
	assert_same_model(c, d);
	list_dir(tmp_dir, names, sizeof(names));
	ck_assert_str_eq(names, "web.ebm");
	umask(old);
	free(buf);
	free(disk);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	ebm_model_destroy(c);
	ebm_model_destroy(d);
	remove_tree(tmp_dir);
}
END_TEST

START_TEST(t_write_relative_path)
{
	/* A bare file name: the temporary file goes in ".". */
	char cwd[1024], names[1024];
	struct ebm_error err;
	make_tmp_dir();
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmp_dir), 0);
	struct ebm_model *a = build_small(true), *b = NULL;
	ck_assert_int_eq(ebm_model_write_file(a, "rel.ebm", &err), EBM_STATUS_OK);
	ck_assert_int_eq(ebm_model_load_file("rel.ebm", &b, &err), EBM_STATUS_OK);
	assert_same_model(a, b);
	ck_assert_int_eq(chdir(cwd), 0);
	list_dir(tmp_dir, names, sizeof(names));
	ck_assert_str_eq(names, "rel.ebm");
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	remove_tree(tmp_dir);
}
END_TEST

/*
 * Makes dir unwritable. Root ignores permission bits, so as root the
 * directory is made immutable (ext4 and most Linux file systems support
 * it). Returns 0 if it could not be done, 1 for chmod, 2 for immutable.
 */
static int make_read_only(const char *dir)
{
	char probe[1024];
	ck_assert_int_eq(chmod(dir, 0555), 0);
	snprintf(probe, sizeof(probe), "%s/probe", dir);
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		return 1;
	}
	close(fd);
	unlink(probe);
#ifdef __linux__
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int flags = 0;
	if (dfd >= 0 && ioctl(dfd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_IMMUTABLE_FL;
		if (ioctl(dfd, FS_IOC_SETFLAGS, &flags) == 0) {
			close(dfd);
			return 2;
		}
	}
	if (dfd >= 0) {
		close(dfd);
	}
#endif
	return 0;
}

static void make_writable(const char *dir, int how)
{
#ifdef __linux__
	if (how == 2) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		int flags = 0;
		ck_assert_int_ge(dfd, 0);
		ck_assert_int_eq(ioctl(dfd, FS_IOC_GETFLAGS, &flags), 0);
		flags &= ~FS_IMMUTABLE_FL;
		ck_assert_int_eq(ioctl(dfd, FS_IOC_SETFLAGS, &flags), 0);
		close(dfd);
	}
#endif
	(void)how;
	ck_assert_int_eq(chmod(dir, 0755), 0);
}

START_TEST(t_write_read_only_dir)
{
	char dir[300], path[512], names[1024];
	struct ebm_error err;
	make_tmp_dir();
	snprintf(dir, sizeof(dir), "%s/ro", tmp_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/m.ebm", dir);
	struct ebm_model *a = build_small(true), *b = build_small(false);
	ck_assert_int_eq(ebm_model_write_file(a, path, &err), EBM_STATUS_OK);
	size_t size_before;
	uint8_t *before = slurp(path, &size_before);
	int how = make_read_only(dir);
	if (how == 0) {
		fprintf(stderr, "t_write_read_only_dir: cannot make a directory "
				"read-only here; skipped\n");
	} else {
		enum ebm_status st = ebm_model_write_file(b, path, &err);
		make_writable(dir, how);
		ck_assert_int_eq(st, EBM_STATUS_IO);
		ck_assert_msg(strstr(err.message, "cannot create a temporary file")
				!= NULL && strstr(err.message, path) != NULL &&
				strstr(err.message, strerror(err.sys_errno)) != NULL,
				"%s", err.message);
		ck_assert_int_ne(err.sys_errno, 0);
		size_t size_after;
		uint8_t *after = slurp(path, &size_after);
		ck_assert_uint_eq(size_after, size_before);
		ck_assert_mem_eq(after, before, size_before);
		free(after);
		list_dir(dir, names, sizeof(names));
		ck_assert_str_eq(names, "m.ebm");
	}
	free(before);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	remove_tree(tmp_dir);
}
END_TEST

START_TEST(t_write_over_directory)
{
	char path[300], inner[512], names[1024];
	struct ebm_error err;
	make_tmp_dir();
	snprintf(path, sizeof(path), "%s/m.ebm", tmp_dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(inner, sizeof(inner), "%s/keep", path);
	spit(inner, "x", 1);
	struct ebm_model *a = build_small(true);
	ck_assert_int_eq(ebm_model_write_file(a, path, &err), EBM_STATUS_IO);
	ck_assert_msg(strstr(err.message, "cannot rename") != NULL &&
			strstr(err.message, path) != NULL, "%s", err.message);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	list_dir(tmp_dir, names, sizeof(names));
	ck_assert_str_eq(names, "m.ebm");
	list_dir(path, names, sizeof(names));
	ck_assert_str_eq(names, "keep");
	/* And a directory path is not loadable either. */
	struct ebm_model *m = (struct ebm_model *)&m;
	ck_assert_int_eq(ebm_model_load_file(path, &m, &err), EBM_STATUS_IO);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.sys_errno, EISDIR);
	ebm_model_destroy(a);
	remove_tree(tmp_dir);
}
END_TEST

START_TEST(t_write_missing_dir)
{
	struct ebm_error err;
	struct ebm_model *a = build_small(true);
	ck_assert_int_eq(ebm_model_write_file(a, "/nonexistent-ebm-dir/m.ebm",
			&err), EBM_STATUS_IO);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_msg(strstr(err.message, "/nonexistent-ebm-dir/m.ebm") != NULL,
			"%s", err.message);
	ck_assert_int_eq(ebm_model_write_file(a, "/tmp/", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ebm_model_destroy(a);
}
END_TEST

START_TEST(t_load_missing_file)
{
	struct ebm_error err;
	struct ebm_model *m = (struct ebm_model *)&m;
	ck_assert_int_eq(ebm_model_load_file("/nonexistent-ebm-dir/m.ebm", &m,
			&err), EBM_STATUS_IO);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_str_eq(err.message, "/nonexistent-ebm-dir/m.ebm: cannot open: "
			"No such file or directory");
}
END_TEST

START_TEST(t_load_file_rejects)
{
	char path[512];
	struct ebm_error err;
	struct ebm_model *m = (struct ebm_model *)&m;
	make_tmp_dir();
	snprintf(path, sizeof(path), "%s/empty.ebm", tmp_dir);
	spit(path, "", 0);
	ck_assert_int_eq(ebm_model_load_file(path, &m, &err), EBM_STATUS_FORMAT);
	ck_assert_ptr_null(m);
	char want[600];
	snprintf(want, sizeof(want), "%s: empty file", path);
	ck_assert_str_eq(err.message, want);
	/* Over the size limit: refused from fstat, before anything is read
	 * (the file is sparse, so this costs no disk). */
	snprintf(path, sizeof(path), "%s/huge.ebm", tmp_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)EBM_MODEL_MAX_FILE_BYTES + 1), 0);
	close(fd);
	m = (struct ebm_model *)&m;
	ck_assert_int_eq(ebm_model_load_file(path, &m, &err), EBM_STATUS_LIMIT);
	ck_assert_ptr_null(m);
	snprintf(want, sizeof(want), "%s: file is 4294967297 bytes, over the "
			"limit of 4294967296", path);
	ck_assert_str_eq(err.message, want);
	/* A corrupt file names its path. */
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	buf[O_BLOB] ^= 1;
	snprintf(path, sizeof(path), "%s/bad.ebm", tmp_dir);
	spit(path, buf, size);
	ck_assert_int_eq(ebm_model_load_file(path, &m, &err), EBM_STATUS_FORMAT);
	snprintf(want, sizeof(want), "%s: offset 548: checksum mismatch: file "
			"is corrupt", path);
	ck_assert_str_eq(err.message, want);
	free(buf);
	spec_finish(&s);
	remove_tree(tmp_dir);
}
END_TEST

/* ======================================================================
 * Rejections, one message each
 * ==================================================================== */

START_TEST(t_reject_empty)
{
	expect_reject((const uint8_t *)"", 0, EBM_STATUS_FORMAT,
			"t.ebm: empty file", 0);
	struct ebm_error err;
	struct ebm_model *m = (struct ebm_model *)&m;
	ck_assert_int_eq(ebm_model_load_buffer(NULL, 0, NULL, &m, &err),
			EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, "<buffer>: empty file");
}
END_TEST

START_TEST(t_reject_too_short)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	expect_reject(buf, 79, EBM_STATUS_FORMAT,
			"t.ebm: too short: 79 bytes, a model file has at least 80", 79);
	expect_reject(buf, 5, EBM_STATUS_FORMAT,
			"t.ebm: too short: 5 bytes, a model file has at least 80", 5);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_bad_magic)
{
	struct spec s;
	spec_default(&s);
	memcpy(s.magic, "EBMMODEl", 9);
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 0: bad magic: not an ebm model file", 0);
	/* Something else entirely. */
	uint8_t junk[200];
	memset(junk, 'x', sizeof(junk));
	expect_reject(junk, sizeof(junk), EBM_STATUS_FORMAT,
			"t.ebm: offset 0: bad magic: not an ebm model file", 0);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_newer_version)
{
	struct spec s;
	spec_default(&s);
	s.version = 3;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 8: unsupported "
			"format version 3 (this build reads 1 to 2)", 8);
	s.version = 0;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 8: unsupported "
			"format version 0 (this build reads 1 to 2)", 8);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_big_endian)
{
	struct spec s;
	spec_default(&s);
	s.bom = 0x04030201u;  /* bytes 01 02 03 04 */
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 12: file is big-endian", 12);
	/* A real big-endian writer's version field comes out swapped too. */
	s.version = 0x01000000u;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 12: file is big-endian", 12);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_bad_bom)
{
	struct spec s;
	spec_default(&s);
	s.bom = 0x01020305u;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 12: bad byte-order mark 0x01020305", 12);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_truncated)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	expect_reject(buf, size - 1, EBM_STATUS_FORMAT,
			"t.ebm: truncated: header says 564 bytes, file has 563", 563);
	expect_reject(buf, 100, EBM_STATUS_FORMAT,
			"t.ebm: truncated: header says 564 bytes, file has 100", 100);
	/* Every cut is refused, whatever the message. */
	for (size_t cut = 0; cut < size; cut++) {
		struct ebm_model *m = (struct ebm_model *)&m;
		struct ebm_error err;
		ck_assert_int_ne(ebm_model_load_buffer(buf, cut, NULL, &m, &err),
				EBM_STATUS_OK);
		ck_assert_ptr_null(m);
		ck_assert_int_eq(err.code, EBM_STATUS_FORMAT);
	}
	/* Cuts every 7th byte with the header size fixed up and resealed:
	 * then the structure itself must be found short. */
	for (size_t cut = 80; cut < size; cut += 7) {
		uint8_t *copy = malloc(cut);
		memcpy(copy, buf, cut);
		w64(copy + 16, cut);
		reseal(copy, cut);
		struct ebm_model *m = (struct ebm_model *)&m;
		struct ebm_error err;
		ck_assert_int_eq(ebm_model_load_buffer(copy, cut, NULL, &m, &err),
				EBM_STATUS_FORMAT);
		ck_assert_ptr_null(m);
		free(copy);
	}
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_trailing_bytes)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	uint8_t *longer = calloc(size + 3, 1);
	memcpy(longer, buf, size);
	expect_reject(longer, size + 3, EBM_STATUS_FORMAT, "t.ebm: 3 bytes after "
			"the declared end (header says 564 bytes)", 564);
	/* Also with the size field telling the truth about a longer file that
	 * still ends in a valid checksum: the structure must end at it. */
	s.n_blob = S_N_BLOB + 1;
	s.blob = realloc(s.blob, s.n_blob * sizeof(float));
	s.blob[S_N_BLOB] = 0.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 548: the floats "
			"end 4 bytes before the checksum", 548);
	free(longer);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_checksum)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	buf[O_BLOB + 5] ^= 0x10;
	expect_reject(buf, size, EBM_STATUS_FORMAT,
			"t.ebm: offset 548: checksum mismatch: file is corrupt", 548);
	buf[O_BLOB + 5] ^= 0x10;
	buf[size - 1] ^= 0x01;
	expect_reject(buf, size, EBM_STATUS_FORMAT,
			"t.ebm: offset 548: checksum mismatch: file is corrupt", 548);
	free(buf);
	spec_finish(&s);
}
END_TEST

/* Every single-byte change anywhere is refused. */
START_TEST(t_reject_any_flip)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	for (size_t i = 0; i < size; i++) {
		for (size_t k = 0; k < sizeof(masks); k++) {
			buf[i] ^= masks[k];
			struct ebm_model *m = (struct ebm_model *)&m;
			struct ebm_error err;
			enum ebm_status st = ebm_model_load_buffer(buf, size, NULL, &m,
					&err);
			ck_assert_msg(st != EBM_STATUS_OK, "flip of byte %zu by 0x%02x "
					"accepted", i, masks[k]);
			ck_assert_ptr_null(m);
			buf[i] ^= masks[k];
		}
	}
	/* And the intact file still loads. */
	struct ebm_model *m = load_ok(buf, size);
	ebm_model_destroy(m);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_count_zero)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	patch_u32(buf, size, 24, 0);
	expect_reject(buf, size, EBM_STATUS_FORMAT,
			"t.ebm: offset 24: feature count is 0, must be at least 1", 24);
	patch_u32(buf, size, 24, 3);
	patch_u32(buf, size, 28, 0);
	expect_reject(buf, size, EBM_STATUS_FORMAT,
			"t.ebm: offset 28: member count is 0, must be at least 1", 28);
	patch_u32(buf, size, 28, 2);
	patch_u32(buf, size, 40, 0);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 40: reference "
			"row count is 0, must be at least 1", 40);
	patch_u32(buf, size, 40, 5);
	patch_u32(buf, size, 68, 0);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 68: width of "
			"hidden layer 1 is 0, must be at least 1", 68);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_count_over_limit)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	patch_u32(buf, size, 24, 70000);
	expect_reject(buf, size, EBM_STATUS_LIMIT, "t.ebm: offset 24: feature "
			"count is 70000, over the limit of 65536", 24);
	patch_u32(buf, size, 24, 3);
	patch_u32(buf, size, 28, 65);
	expect_reject(buf, size, EBM_STATUS_LIMIT, "t.ebm: offset 28: member "
			"count is 65, over the limit of 64", 28);
	patch_u32(buf, size, 28, 2);
	patch_u32(buf, size, 32, 17);
	expect_reject(buf, size, EBM_STATUS_LIMIT, "t.ebm: offset 32: hidden "
			"layer count is 17, over the limit of 16", 32);
	patch_u32(buf, size, 32, 2);
	patch_u32(buf, size, 40, 10000001);
	expect_reject(buf, size, EBM_STATUS_LIMIT, "t.ebm: offset 40: reference "
			"row count is 10000001, over the limit of 10000000", 40);
	patch_u32(buf, size, 40, 5);
	patch_u32(buf, size, 64, 65537);
	expect_reject(buf, size, EBM_STATUS_LIMIT, "t.ebm: offset 64: width of "
			"hidden layer 0 is 65537, over the limit of 65536", 64);
	patch_u32(buf, size, 64, 4);
	/* Back to the original: it loads again. */
	struct ebm_model *m = load_ok(buf, size);
	ebm_model_destroy(m);
	free(buf);
	spec_finish(&s);
}
END_TEST

/*
 * Widths 65536 x 65536 make a parameter count of 2^32 + 262145, which wraps
 * to 262145 in 32-bit arithmetic. The file below holds exactly the wrapped
 * number of floats, so a reader that let the product overflow would accept
 * it (and then read far past the buffer).
 */
START_TEST(t_reject_count_overflow)
{
	struct spec s;
	spec_default(&s);
	s.d = 1;
	s.n_members = 1;
	s.n_layers = 2;
	s.hidden[0] = 65536;
	s.hidden[1] = 65536;
	s.n_ref = 1;
	s.has_names = 0;
	uint32_t np32 = 1u * 65536u + 65536u + 65536u * 65536u + 65536u +
			65536u + 1u;
	ck_assert_uint_eq(np32, 262145u);
	s.n_blob = 2 + 1 + (size_t)np32 + 1 + 1;
	free(s.blob);
	s.blob = calloc(s.n_blob, sizeof(float));
	s.blob[1] = 1.0f;
	size_t size;
	uint8_t *buf = emit(&s, &size);
	uint64_t true_bytes = (2 + 1 + ((uint64_t)1 << 32) + 262145 + 1 + 1) * 4;
	uint64_t remain = size - 16 - 72;
	char want[256];
	snprintf(want, sizeof(want), "t.ebm: offset 24: the counts imply %" PRIu64
			" bytes of floats, but only %" PRIu64 " bytes remain in the file",
			true_bytes, remain);
	expect_reject(buf, size, EBM_STATUS_FORMAT, want, 24);
	free(buf);
	/* The same with the biggest everything: no overflow in 64 bits either. */
	s.d = 65536;
	s.n_members = 64;
	s.n_layers = 16;
	for (int l = 0; l < 16; l++) {
		s.hidden[l] = 65536;
	}
	s.n_ref = 10000000;
	buf = emit(&s, &size);
	uint64_t h = 65536, np = h * h + h + 15 * (h * h + h) + h + 1;
	true_bytes = 4 * (2 * h + h * h + 64 * np + 10000000u * h + 10000000u);
	remain = size - 16 - (64 + 64);
	snprintf(want, sizeof(want), "t.ebm: offset 24: the counts imply %" PRIu64
			" bytes of floats, but only %" PRIu64 " bytes remain in the file",
			true_bytes, remain);
	expect_reject(buf, size, EBM_STATUS_FORMAT, want, 24);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_unknown_activation)
{
	struct spec s;
	spec_default(&s);
	s.act = 2;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 36: unknown activation 2", 36);
	s.act = 0xffffffffu;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 36: unknown activation 4294967295", 36);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_bad_alpha)
{
	struct spec s;
	spec_default(&s);
	s.alpha = 0.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 44: alpha is 0, must be in (0, 1)", 44);
	s.alpha = 1.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 44: alpha is 1, must be in (0, 1)", 44);
	s.alpha = -0.5f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 44: alpha is -0.5, must be in (0, 1)", 44);
	s.alpha = NAN;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 44: alpha is nan, must be in (0, 1)", 44);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_string_past_end)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	patch_u32(buf, size, O_OBJECTIVE, 0x7fffffffu);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 72: string "
			"length 2147483647 runs past the end of the file", O_OBJECTIVE);
	patch_u32(buf, size, O_OBJECTIVE, 3);
	/* The checksum is not part of the strings' room. */
	patch_u32(buf, size, O_OPTIONS, (uint32_t)(size - 16 - O_OPTIONS - 4 + 1));
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 104: string "
			"length 441 runs past the end of the file", O_OPTIONS);
	patch_u32(buf, size, O_OPTIONS, 18);
	patch_u32(buf, size, O_NAMES + 7, 0xffffffffu);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 90: string "
			"length 4294967295 runs past the end of the file", O_NAMES + 7);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_unexpected_end)
{
	/* Hidden widths cut off by the end of the file. */
	struct spec s;
	spec_default(&s);
	s.n_layers = 16;
	for (int l = 0; l < 16; l++) {
		s.hidden[l] = 2;
	}
	s.cut_body_at = 64 + 12;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 76: unexpected "
			"end of file reading the hidden widths", 76);
	spec_finish(&s);
	/* A long objective eats the bytes has_feature_names needed. */
	spec_default(&s);
	s.d = 1;
	s.n_members = 1;
	s.n_layers = 1;
	s.hidden[0] = 1;
	s.n_ref = 1;
	s.objective = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";  /* 33 bytes */
	s.cut_body_at = 68 + 4 + 33;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 105: unexpected "
			"end of file reading has_feature_names", 105);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_blob_short)
{
	struct spec s;
	spec_default(&s);
	s.n_blob = S_N_BLOB - 1;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 128: the counts "
			"imply 420 bytes of floats, but only 416 bytes remain before the "
			"checksum", 128);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_objective)
{
	struct spec s;
	spec_default(&s);
	s.objective = "";
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 72: objective is empty", 72);
	s.objective = "0123456789012345678901234567890123456789"
			"0123456789012345678901234";  /* 65 */
	expect_spec_reject(&s, EBM_STATUS_LIMIT, "t.ebm: offset 72: objective is "
			"65 bytes, over the limit of 64", 72);
	s.objective = "ds\tm";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 78: objective "
			"contains control character U+0009", 78);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_bad_utf8)
{
	struct spec s;
	spec_default(&s);
	s.names[1] = "m\xc3";       /* truncated sequence */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 95: "
			"feature_names[1] is not valid UTF-8", 95);
	s.names[1] = "\xc0\xafx";   /* overlong '/' */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 94: "
			"feature_names[1] is not valid UTF-8", 94);
	s.names[1] = "\xed\xa0\x80"; /* a surrogate */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 94: "
			"feature_names[1] is not valid UTF-8", 94);
	s.names[1] = "m\xc3\xa9m";  /* valid: "mém" */
	size_t size;
	uint8_t *buf = emit(&s, &size);
	struct ebm_model *m = load_ok(buf, size);
	ck_assert_str_eq(ebm_model_feature_name(m, 1), "m\xc3\xa9m");
	ebm_model_destroy(m);
	free(buf);
	s.names[1] = "mem";
	s.options = "a=\xff\n";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 110: "
			"training_options is not valid UTF-8", 110);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_control_chars)
{
	struct spec s;
	spec_default(&s);
	s.names[2] = "n\x01t";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 102: "
			"feature_names[2] contains control character U+0001", 102);
	s.names[2] = "n\nt";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 102: "
			"feature_names[2] contains control character U+000A", 102);
	s.names[2] = "n\xc2\x85t";  /* U+0085, a C1 control */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 102: "
			"feature_names[2] contains control character U+0085", 102);
	s.names[2] = "net";
	s.options = "a=1\x7f\n";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 111: "
			"training_options contains control character U+007F", 111);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_options_limit)
{
	struct spec s;
	spec_default(&s);
	char *big = malloc(EBM_MODEL_MAX_OPTIONS + 2);
	memset(big, 'a', EBM_MODEL_MAX_OPTIONS + 1);
	big[EBM_MODEL_MAX_OPTIONS + 1] = '\0';
	s.options = big;
	expect_spec_reject(&s, EBM_STATUS_LIMIT, "t.ebm: offset 104: "
			"training_options is 65537 bytes, over the limit of 65536", 104);
	big[EBM_MODEL_MAX_OPTIONS] = '\0';
	size_t size;
	uint8_t *buf = emit(&s, &size);
	struct ebm_model *m = load_ok(buf, size);
	ck_assert_uint_eq(strlen(ebm_model_training_options(m)), 65536);
	ebm_model_destroy(m);
	free(buf);
	free(big);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_has_names)
{
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	patch_u32(buf, size, O_HAS_NAMES, 2);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 79: "
			"has_feature_names is 2, must be 0 or 1", 79);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_feature_names)
{
	struct spec s;
	spec_default(&s);
	s.names[1] = "";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 90: "
			"feature_names[1] is empty", 90);
	char long_name[258];
	memset(long_name, 'n', 257);
	long_name[257] = '\0';
	s.names[1] = long_name;
	expect_spec_reject(&s, EBM_STATUS_LIMIT, "t.ebm: offset 90: "
			"feature_names[1] is 257 bytes, over the limit of 256", 90);
	long_name[256] = '\0';
	size_t size;
	uint8_t *buf = emit(&s, &size);
	struct ebm_model *m = load_ok(buf, size);
	ebm_model_destroy(m);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_duplicate_names)
{
	struct spec s;
	spec_default(&s);
	s.names[2] = "cpu";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 97: "
			"feature_names[2] 'cpu' repeats feature_names[0]", 97);
	s.names[2] = "mem";
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 97: "
			"feature_names[2] 'mem' repeats feature_names[1]", 97);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_padding)
{
	struct spec s;
	spec_default(&s);
	s.pad_byte = 0x20;
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 126: padding "
			"byte is 0x20, must be 0", O_PAD);
	s.pad_byte = 0;
	size_t size;
	uint8_t *buf = emit(&s, &size);
	buf[O_BLOB - 1] = 0x01;
	reseal(buf, size);
	expect_reject(buf, size, EBM_STATUS_FORMAT, "t.ebm: offset 127: padding "
			"byte is 0x01, must be 0", O_BLOB - 1);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_non_finite)
{
	static const struct {
		size_t index;
		const char *message;
	} cases[] = {
		{ S_MEAN + 1, "t.ebm: offset 132: non-finite value in mean[1]" },
		{ S_SCALE + 2, "t.ebm: offset 148: non-finite value in scale[2]" },
		{ S_PREC + 4, "t.ebm: offset 168: non-finite value in prec[4]" },
		{ S_PARAMS + 69, "t.ebm: offset 464: non-finite value in params[69]" },
		{ S_REF_ROWS, "t.ebm: offset 468: non-finite value in ref_rows[0]" },
		{ S_REF_ENERGY + 4,
		  "t.ebm: offset 544: non-finite value in ref_energy[4]" },
	};
	const float bad[3] = { NAN, INFINITY, -INFINITY };
	struct spec s;
	spec_default(&s);
	size_t size;
	uint8_t *buf = emit(&s, &size);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int k = 0; k < 3; k++) {
			size_t off = O_BLOB + 4 * cases[c].index;
			patch_f32(buf, size, off, bad[k]);
			expect_reject(buf, size, EBM_STATUS_FORMAT, cases[c].message,
					off);
			patch_f32(buf, size, off, s.blob[cases[c].index]);
		}
	}
	struct ebm_model *m = load_ok(buf, size);
	ebm_model_destroy(m);
	free(buf);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_scale)
{
	struct spec s;
	spec_default(&s);
	s.blob[S_SCALE + 1] = 0.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 144: scale[1] is 0, must be > 0", 144);
	s.blob[S_SCALE + 1] = -2.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 144: scale[1] is -2, must be > 0", 144);
	s.blob[S_SCALE + 1] = -0.0f;
	expect_spec_reject(&s, EBM_STATUS_FORMAT,
			"t.ebm: offset 144: scale[1] is -0, must be > 0", 144);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_asymmetric_prec)
{
	struct spec s;
	spec_default(&s);
	s.blob[S_PREC + 7] = 0.25f;  /* P[2][1]; P[1][2] is 0.2 */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 180: prec[2][1] "
			"= 0.25 differs from prec[1][2] = 0.200000003 (must be "
			"symmetric)", 180);
	spec_finish(&s);
}
END_TEST

START_TEST(t_reject_unsorted_energies)
{
	struct spec s;
	spec_default(&s);
	s.blob[S_REF_ENERGY + 3] = -0.25f;  /* after 0 */
	expect_spec_reject(&s, EBM_STATUS_FORMAT, "t.ebm: offset 540: "
			"ref_energy[3] = -0.25 is below ref_energy[2] = 0 (must be "
			"non-decreasing)", 540);
	/* Ties are fine. */
	s.blob[S_REF_ENERGY + 3] = 0.0f;
	size_t size;
	uint8_t *buf = emit(&s, &size);
	struct ebm_model *m = load_ok(buf, size);
	ebm_model_destroy(m);
	free(buf);
	spec_finish(&s);
}
END_TEST

/* ======================================================================
 * Finalize and the writer refuse what the reader would refuse
 * ==================================================================== */

START_TEST(t_finalize_rejects)
{
	struct ebm_error err;
	static const uint32_t hidden[2] = { 5, 4 };
	struct ebm_model *m = build_raw(4, 2, 2, hidden, 7, true);
	m->net.params[3] = NAN;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_msg(strstr(err.message, "<model>: offset ") == err.message &&
			strstr(err.message, "non-finite value in params[3]") != NULL,
			"%s", err.message);
	ck_assert_str_eq(ebm_model_checksum(m), "");
	void *data = (void *)&data;
	size_t size = 1;
	ck_assert_int_eq(ebm_model_write_buffer(m, &data, &size, &err),
			EBM_STATUS_FORMAT);
	ck_assert_ptr_null(data);
	ck_assert_uint_eq(size, 0);
	m->net.params[3] = 0.0f;

	m->ref_energy[5] = -10.0f;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_msg(strstr(err.message, "ref_energy[5] = -10 is below") !=
			NULL, "%s", err.message);
	m->ref_energy[5] = m->ref_energy[6];

	free(m->feature_names[3]);
	m->feature_names[3] = dup_s(m->feature_names[0]);
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_msg(strstr(err.message, "feature_names[3] 'f04_a' repeats "
			"feature_names[0]") != NULL, "%s", err.message);
	free(m->feature_names[3]);
	m->feature_names[3] = dup_s("other");

	m->alpha = 1.5f;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message,
			"<model>: offset 44: alpha is 1.5, must be in (0, 1)");
	m->alpha = 0.01f;

	free(m->objective);
	m->objective = NULL;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, "<model>: offset 72: objective is empty");
	m->objective = dup_s("dsm");

	/* Fixed: it finalizes, and the written file loads back. */
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_OK);
	ck_assert_uint_eq(strlen(ebm_model_checksum(m)), 32);
	ck_assert_int_eq(ebm_model_feature_index(m, "other"), 3);
	uint8_t *buf;
	serialize(m, &buf, &size);
	struct ebm_model *b = load_ok(buf, size);
	assert_same_model(m, b);
	free(buf);
	ebm_model_destroy(b);
	ebm_model_destroy(m);

	/* A model whose arrays were never allocated. */
	m = ebm_model_alloc();
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message,
			"<model>: offset 24: feature count is 0, must be at least 1");
	ebm_model_destroy(m);
	m = build_raw(4, 2, 2, hidden, 7, false);
	free(m->ref_rows);
	m->ref_rows = NULL;
	ck_assert_int_eq(ebm_model_finalize(m, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ebm_model_destroy(m);
	ebm_model_destroy(NULL);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("roundtrip");
	tcase_add_test(tc, t_roundtrip_names);
	tcase_add_test(tc, t_roundtrip_no_names);
	tcase_add_test(tc, t_spec_matches_writer);
	tcase_add_test(tc, t_golden_file);
	tcase_add_test(tc, t_feature_index);
	tcase_add_test(tc, t_roundtrip_shapes);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, t_roundtrip_file);
	tcase_add_test(tc, t_write_relative_path);
	tcase_add_test(tc, t_write_read_only_dir);
	tcase_add_test(tc, t_write_over_directory);
	tcase_add_test(tc, t_write_missing_dir);
	tcase_add_test(tc, t_load_missing_file);
	tcase_add_test(tc, t_load_file_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("reject");
	tcase_add_test(tc, t_reject_empty);
	tcase_add_test(tc, t_reject_too_short);
	tcase_add_test(tc, t_reject_bad_magic);
	tcase_add_test(tc, t_reject_newer_version);
	tcase_add_test(tc, t_reject_big_endian);
	tcase_add_test(tc, t_reject_bad_bom);
	tcase_add_test(tc, t_reject_truncated);
	tcase_add_test(tc, t_reject_trailing_bytes);
	tcase_add_test(tc, t_reject_checksum);
	tcase_add_test(tc, t_reject_any_flip);
	tcase_add_test(tc, t_reject_count_zero);
	tcase_add_test(tc, t_reject_count_over_limit);
	tcase_add_test(tc, t_reject_count_overflow);
	tcase_add_test(tc, t_reject_unknown_activation);
	tcase_add_test(tc, t_reject_bad_alpha);
	tcase_add_test(tc, t_reject_string_past_end);
	tcase_add_test(tc, t_reject_unexpected_end);
	tcase_add_test(tc, t_reject_blob_short);
	tcase_add_test(tc, t_reject_objective);
	tcase_add_test(tc, t_reject_bad_utf8);
	tcase_add_test(tc, t_reject_control_chars);
	tcase_add_test(tc, t_reject_options_limit);
	tcase_add_test(tc, t_reject_has_names);
	tcase_add_test(tc, t_reject_feature_names);
	tcase_add_test(tc, t_reject_duplicate_names);
	tcase_add_test(tc, t_reject_padding);
	tcase_add_test(tc, t_reject_non_finite);
	tcase_add_test(tc, t_reject_scale);
	tcase_add_test(tc, t_reject_asymmetric_prec);
	tcase_add_test(tc, t_reject_unsorted_energies);
	tcase_add_test(tc, t_finalize_rejects);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(model_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
