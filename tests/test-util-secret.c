/*
 * test-util-secret.c — secrets are wiped before their memory is freed:
 * ebm_secret_free() and the token file reader (ebm_conf_read_token),
 * which also wipes the buffer the file was read into.
 *
 * Linked with -Wl,--wrap=free: every free() of this program (libebm's
 * included) first goes through __wrap_free, which looks for the token's
 * bytes in the block being freed. A wipe the compiler dropped as a dead
 * store before free() (memset, as ebmd's free_token did) leaves them
 * there and fails the test; explicit_bzero does not.
 */
#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/util.h"

#define TOKEN "s3cret-token-for-the-wipe-test"

void __real_free(void *p);
void __wrap_free(void *p);

static bool armed;
static size_t n_leaks;   /* blocks freed with the token still in them */

void __wrap_free(void *p)
{
	if (armed && p != NULL) {
		size_t n = malloc_usable_size(p);
		if (memmem(p, n, TOKEN, sizeof(TOKEN) - 1) != NULL) {
			n_leaks++;
		}
	}
	__real_free(p);
}

START_TEST(test_secret_free)
{
	char *s = strdup(TOKEN);
	ck_assert_ptr_nonnull(s);
	n_leaks = 0;
	armed = true;
	ebm_secret_free(s);
	armed = false;
	ck_assert_uint_eq(n_leaks, 0);
	ebm_secret_free(NULL);
}
END_TEST

START_TEST(test_secret_wipe)
{
	char buf[] = "abc" TOKEN;
	ebm_secret_wipe(buf + 3, sizeof(buf) - 4);
	ck_assert(memcmp(buf, "abc", 3) == 0);
	for (size_t i = 3; i < sizeof(buf); i++) {
		ck_assert_int_eq(buf[i], 0);
	}
	ebm_secret_wipe(NULL, 0);
}
END_TEST

START_TEST(test_token_file)
{
	char path[] = "/tmp/ebm-secret-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char text[] = "  " TOKEN "  \nsecond line " TOKEN "\n";
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1),
			(ssize_t)(sizeof(text) - 1));
	close(fd);
	char *token = NULL;
	struct ebm_error err;
	n_leaks = 0;
	armed = true;
	enum ebm_status st = ebm_conf_read_token(path, &token, NULL, &err);
	armed = false;
	unlink(path);
	ck_assert_msg(st == EBM_STATUS_OK, "%s", err.message);
	ck_assert_str_eq(token, TOKEN);
	/* the file's text was wiped before it was freed */
	ck_assert_uint_eq(n_leaks, 0);
	armed = true;
	ebm_secret_free(token);
	armed = false;
	ck_assert_uint_eq(n_leaks, 0);
}
END_TEST

/* The wrapper itself sees a token left in a freed block. */
START_TEST(test_wrapper_detects)
{
	/* Through a volatile pointer: the compiler may drop a strdup() and
	 * free() pair that it can see. */
	void (*volatile release)(void *) = free;
	char *s = strdup(TOKEN);
	n_leaks = 0;
	armed = true;
	release(s);
	armed = false;
	ck_assert_uint_eq(n_leaks, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("secret");
	TCase *tc = tcase_create("wipe");
	tcase_add_test(tc, test_wrapper_detects);
	tcase_add_test(tc, test_secret_free);
	tcase_add_test(tc, test_secret_wipe);
	tcase_add_test(tc, test_token_file);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
