/*
 * test-info-model.c — the training options of the model-info object
 * (src/info/model-info.c, shown by `ebmd-train inspect` and GET
 * /v1/models): floats as the shortest text that reads back, both for the
 * text a file written today holds (ebm_train_options_format) and for
 * files written before, which stored them as %.9g ("lr=0.00100000005").
 * Integers, seeds and other text are shown as stored.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/train.h"
#include "fixture-model.h"
#include "info/info.h"

static json_t *options_of(const char *text)
{
	struct ebm_model *m = fixture_model(2, 4, 5, 1, NULL);
	free(m->options);
	m->options = strdup(text);
	json_t *info = ebm_info_model(m, "m", 0.05, 0);
	ck_assert_ptr_nonnull(info);
	json_t *o = json_incref(json_object_get(info, "training_options"));
	json_decref(info);
	ebm_model_destroy(m);
	ck_assert_ptr_nonnull(o);
	return o;
}

static void expect(json_t *o, const char *key, const char *value)
{
	const char *got = json_string_value(json_object_get(o, key));
	ck_assert_msg(got != NULL && strcmp(got, value) == 0, "%s: '%s', not '%s'",
			key, got != NULL ? got : "(none)", value);
}

START_TEST(old_files_shown_clean)
{
	json_t *o = options_of("objective=dsm\nhidden=256,256\nlr=0.00100000005\n"
			"beta1=0.899999976\nalpha=0.00999999978\nclip=10\n"
			"tiny=1.00000001e-10\nbig=3.40282347e+38\n"
			"seed=18446744073709551615\nthreads=2\nscaling=std\n"
			"odd=1.5x\nnot_float=1e99\nempty=\n");
	expect(o, "lr", "0.001");
	expect(o, "beta1", "0.9");
	expect(o, "alpha", "0.01");
	expect(o, "clip", "10");
	expect(o, "tiny", "1e-10");
	expect(o, "big", "3.4028235e+38");
	/* Integers are not floats: a seed keeps all its digits. */
	expect(o, "seed", "18446744073709551615");
	expect(o, "threads", "2");
	expect(o, "hidden", "256,256");
	expect(o, "scaling", "std");
	expect(o, "odd", "1.5x");
	expect(o, "not_float", "1e99");   /* beyond a float: as stored */
	expect(o, "empty", "");
	json_decref(o);
}
END_TEST

START_TEST(new_files_store_shortest)
{
	struct ebm_train_options opt;
	ebm_train_options_init(&opt);
	opt.lr = 0.001f;
	opt.beta1 = 0.9f;
	opt.sigma_min = 0.2f;
	char *text = ebm_train_options_format(&opt);
	ck_assert_msg(strstr(text, "\nlr=0.001\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "\nbeta1=0.9\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "\nsigma_min=0.2\n") != NULL, "%s", text);
	/* Every float reads back as the option's own value. */
	char *at = strstr(text, "\nlr=");
	ck_assert(strtof(at + 4, NULL) == opt.lr);
	json_t *o = options_of(text);
	expect(o, "lr", "0.001");
	expect(o, "beta1", "0.9");
	json_decref(o);
	free(text);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("info");
	TCase *tc = tcase_create("options");
	tcase_add_test(tc, old_files_shown_clean);
	tcase_add_test(tc, new_files_store_shortest);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
