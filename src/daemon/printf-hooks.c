/*
 * printf-hooks.c — keeps printf on glibc's fast path in ebmd.
 *
 * Debian's OpenBLAS links libgfortran, which loads libquadmath, whose
 * constructor registers printf handlers for __float128 ('Q' modifier,
 * specifiers f e g a ...). Once any handler is registered, glibc formats
 * every printf-family call of the process on its slow, positional path.
 * evhttp writes each response's status line and headers with
 * evbuffer_add_printf, so that path cost a single-row score request about
 * 9% of its user-space instructions (callgrind, bench/http-bench.sh's
 * load), for a feature ebmd never uses.
 *
 * The executable's own definitions below take precedence over libc's
 * (they are exported for that, see src/meson.build) and refuse every
 * registration, which libquadmath's constructor takes as "no hooks" and
 * stops. Nothing in ebmd formats a __float128.
 */
#include <stdio.h>   /* defines __GLIBC__ on glibc */

#ifdef __GLIBC__
#include <printf.h>

int register_printf_specifier(int spec, printf_function fn,
		printf_arginfo_size_function arginfo)
{
	(void)spec;
	(void)fn;
	(void)arginfo;
	return -1;
}

int register_printf_function(int spec, printf_function fn,
		printf_arginfo_function arginfo)
{
	(void)spec;
	(void)fn;
	(void)arginfo;
	return -1;
}

int register_printf_modifier(const wchar_t *str)
{
	(void)str;
	return -1;
}

int register_printf_type(printf_va_arg_function fct)
{
	(void)fct;
	return -1;
}
#endif
