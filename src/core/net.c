/*
 * net.c — the energy network's shape, storage and whole-network
 * evaluation (all members averaged). Per-member maths with gradients for
 * training lives in member.c.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

const char *ebm_act_name(enum ebm_act a)
{
	switch (a) {
	case EBM_ACT_SILU: return "silu";
	case EBM_ACT_SOFTPLUS: return "softplus";
	}
	return "unknown";
}

size_t ebm_net_param_count(uint32_t d, uint32_t n_layers,
		const uint32_t *hidden)
{
	size_t total = 0;
	size_t in = d;
	for (uint32_t l = 0; l < n_layers; l++) {
		size_t w;
		if (!ebm_mul_size(in, hidden[l], &w) ||
				!ebm_add_size(total, w, &total) ||
				!ebm_add_size(total, hidden[l], &total)) {
			return 0;
		}
		in = hidden[l];
	}
	if (!ebm_add_size(total, in + 1, &total)) {
		return 0;
	}
	return total;
}

bool ebm_net_init(struct ebm_net *net, uint32_t d, uint32_t n_members,
		uint32_t n_layers, const uint32_t *hidden, enum ebm_act act)
{
	memset(net, 0, sizeof(*net));
	if (d == 0 || n_members == 0 || n_layers == 0 ||
			n_layers > EBM_MODEL_MAX_LAYERS) {
		return false;
	}
	size_t n_params = ebm_net_param_count(d, n_layers, hidden);
	size_t dd, all;
	if (n_params == 0 || !ebm_mul_size(d, d, &dd) ||
			!ebm_mul_size(n_params, n_members, &all)) {
		return false;
	}
	net->d = d;
	net->n_members = n_members;
	net->n_layers = n_layers;
	memcpy(net->hidden, hidden, n_layers * sizeof(hidden[0]));
	net->act = act;
	net->n_params = n_params;
	net->mean = calloc(d, sizeof(float));
	net->scale = ebm_alloc_array(d, sizeof(float));
	net->prec = ebm_alloc_array(dd, sizeof(float));
	net->params = ebm_alloc_array(all, sizeof(float));
	if (net->mean == NULL || net->scale == NULL || net->prec == NULL ||
			net->params == NULL) {
		ebm_net_finish(net);
		return false;
	}
	for (uint32_t j = 0; j < d; j++) {
		net->scale[j] = 1.0f;
	}
	memset(net->prec, 0, dd * sizeof(float));
	memset(net->params, 0, all * sizeof(float));
	return true;
}

void ebm_net_finish(struct ebm_net *net)
{
	free(net->mean);
	free(net->scale);
	free(net->prec);
	free(net->params);
	ebm_proto_finish(&net->proto);
	memset(net, 0, sizeof(*net));
}

bool ebm_net_copy(struct ebm_net *dst, const struct ebm_net *src)
{
	if (!ebm_net_init(dst, src->d, src->n_members, src->n_layers,
				src->hidden, src->act)) {
		return false;
	}
	size_t d = src->d;
	memcpy(dst->mean, src->mean, d * sizeof(float));
	memcpy(dst->scale, src->scale, d * sizeof(float));
	memcpy(dst->prec, src->prec, d * d * sizeof(float));
	memcpy(dst->params, src->params,
			src->n_params * src->n_members * sizeof(float));
	if (!ebm_proto_copy(&dst->proto, &src->proto, src->d)) {
		ebm_net_finish(dst);
		return false;
	}
	return true;
}

size_t ebm_net_max_width(const struct ebm_net *net)
{
	size_t w = net->d;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		if (net->hidden[l] > w) {
			w = net->hidden[l];
		}
	}
	return w;
}

void ebm_net_standardize(const struct ebm_net *net, const float *x, size_t n,
		float *z)
{
	size_t d = net->d;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			z[i * d + j] = (x[i * d + j] - net->mean[j]) / net->scale[j];
		}
	}
}

void ebm_net_unstandardize(const struct ebm_net *net, const float *z,
		size_t n, float *x)
{
	size_t d = net->d;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			x[i * d + j] = z[i * d + j] * net->scale[j] + net->mean[j];
		}
	}
}

void ebm_work_init(struct ebm_work *w)
{
	w->buf = NULL;
	w->cap = 0;
}

void ebm_work_finish(struct ebm_work *w)
{
	free(w->buf);
	ebm_work_init(w);
}

float *ebm_work_reserve(struct ebm_work *w, size_t n)
{
	if (n <= w->cap) {
		return w->buf;
	}
	size_t bytes;
	if (!ebm_mul_size(n, sizeof(float), &bytes)) {
		return NULL;
	}
	float *p = realloc(w->buf, bytes);
	if (p == NULL) {
		return NULL;
	}
	w->buf = p;
	w->cap = n;
	return p;
}
