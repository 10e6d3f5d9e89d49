/*
 * options.c — training options: shipped defaults, range checks with
 * messages that name the option, and the "key=value" record stored in the
 * model file so that every file says how it was made.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/train.h"
#include "util/util.h"

bool ebm_objective_parse(const char *name, enum ebm_objective *out)
{
	if (strcmp(name, "dsm") == 0) {
		*out = EBM_OBJECTIVE_DSM;
		return true;
	}
	if (strcmp(name, "cd") == 0) {
		*out = EBM_OBJECTIVE_CD;
		return true;
	}
	return false;
}

const char *ebm_objective_name(enum ebm_objective o)
{
	return o == EBM_OBJECTIVE_CD ? "cd" : "dsm";
}

void ebm_train_options_init(struct ebm_train_options *o)
{
	memset(o, 0, sizeof(*o));
	/* cd: see the prototype term below. */
	o->objective = EBM_OBJECTIVE_CD;
	o->n_layers = 2;
	o->hidden[0] = 128;
	o->hidden[1] = 128;
	o->n_members = 1;
	o->epochs = 200;
	/* Training is bounded in optimizer steps, so a large set costs
	 * what a small one does: 2000 steps of 256 rows fit every set of the
	 * suite as well as 200 epochs (bench/results/quality_notes.md). */
	o->max_steps = 2000;
	o->batch = 256;
	o->lr = 1e-3f;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->weight_decay = 0.0f;
	o->clip_norm = 10.0f;
	o->warmup_frac = 0.05f;
	o->ema_decay = 0.999f;
	/* A uniform average of every step (an EMA only past ~1000 steps);
	 * as members start near the Gaussian base, it also pulls short runs
	 * toward the base. See bench/results/quality_notes.md. */
	o->ema_power = 0.0f;
	o->patience = 20;
	o->reference_frac = 0.1f;
	o->reference_min = 50;
	o->reference_max = 5000;
	o->val_frac = 0.1f;
	o->alpha = 0.01f;
	o->prec_shrink = 0.1f;
	o->robust_scale = false;
	/* One noise level: ladders reaching down to 0.05 or up to 1 rank
	 * anomalies worse (bench/results/quality_notes.md). */
	o->sigma_min = 0.2f;
	o->sigma_max = 0.2f;
	o->n_sigmas = 1;
	o->cd_steps = 20;
	o->cd_step_size = 0.05f;
	o->cd_noise = 0.3f;   /* ~ sqrt(2 eps): Langevin at temperature 1 */
	o->cd_reinit = 0.05f;
	o->cd_buffer = 10000;
	o->cd_energy_reg = 0.01f;
	/* The default energy is a cd network and a prototype term, each
	 * divided by its interquartile range on the validation rows, the
	 * network weighted by the data (--proto-net-weight auto, weigh.c):
	 * at most 2048 k-means centres with bandwidths growing with the local
	 * spacing of the centres (alpha 1.5), and a network trained by
	 * contrastive divergence for at most 2000 steps. The prototypes rank
	 * anomalies among several normal modes, the network where a few
	 * directions matter (waveform, wilt). Chosen by cross-validation over
	 * the 23 ADBench sets; see bench/results/quality_notes.md (issue 9).
	 * --proto-net-weight 0 is the prototype term alone, --protos 0 the
	 * network alone, --proto-net-weight 1 the previous default. */
	o->n_protos = 2048;
	o->proto_iters = 10;
	o->proto_alpha = 1.5f;
	o->proto_net_weight = 1.0f;   /* with --proto-net-weight X */
	o->proto_net_auto = true;
	o->proto_net_noise = false;
	o->seed = 1;
	o->n_threads = 1;
	o->created = 0;
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT, \
					__VA_ARGS__); \
		} \
	} while (0)

static bool in_open01(float v)
{
	return isfinite(v) && v > 0.0f && v < 1.0f;
}

enum ebm_status ebm_train_options_validate(const struct ebm_train_options *o,
		struct ebm_error *err)
{
	CHECK(o->objective == EBM_OBJECTIVE_DSM || o->objective == EBM_OBJECTIVE_CD,
			"objective must be dsm or cd");
	CHECK(o->n_layers >= 1 && o->n_layers <= EBM_MODEL_MAX_LAYERS,
			"hidden must list 1 to %u layer widths, got %u",
			EBM_MODEL_MAX_LAYERS, o->n_layers);
	for (uint32_t l = 0; l < o->n_layers; l++) {
		CHECK(o->hidden[l] >= 1 && o->hidden[l] <= 4096,
				"hidden layer %u width must be 1..4096, got %u", l + 1,
				o->hidden[l]);
	}
	CHECK(o->n_members >= 1 && o->n_members <= EBM_MODEL_MAX_MEMBERS,
			"members must be 1..%u, got %u", EBM_MODEL_MAX_MEMBERS,
			o->n_members);
	/* 0: the members are not trained (all-zero MLPs), so the network is
	 * the Gaussian base alone. */
	CHECK(o->epochs <= 1000000, "epochs must be 0..1000000, got %u",
			o->epochs);
	CHECK(o->batch >= 1 && o->batch <= 65536,
			"batch must be 1..65536, got %u", o->batch);
	CHECK(isfinite(o->lr) && o->lr > 0.0f && o->lr <= 1.0f,
			"lr must be in (0, 1], got %g", (double)o->lr);
	CHECK(isfinite(o->beta1) && o->beta1 >= 0.0f && o->beta1 < 1.0f,
			"beta1 must be in [0, 1), got %g", (double)o->beta1);
	CHECK(in_open01(o->beta2), "beta2 must be in (0, 1), got %g",
			(double)o->beta2);
	CHECK(isfinite(o->weight_decay) && o->weight_decay >= 0.0f &&
			o->weight_decay < 1.0f,
			"weight-decay must be in [0, 1), got %g", (double)o->weight_decay);
	CHECK(isfinite(o->clip_norm) && o->clip_norm >= 0.0f,
			"clip must be >= 0 (0 = off), got %g", (double)o->clip_norm);
	CHECK(isfinite(o->warmup_frac) && o->warmup_frac >= 0.0f &&
			o->warmup_frac < 1.0f,
			"warmup must be in [0, 1), got %g", (double)o->warmup_frac);
	CHECK(isfinite(o->ema_decay) && o->ema_decay >= 0.0f &&
			o->ema_decay < 1.0f,
			"ema must be in [0, 1) (0 = off), got %g", (double)o->ema_decay);
	CHECK(isfinite(o->ema_power) && o->ema_power >= 0.0f &&
			o->ema_power <= 1000.0f,
			"ema-power must be in [0, 1000], got %g", (double)o->ema_power);
	CHECK(o->patience <= 1000000, "patience must be <= 1000000");
	CHECK(in_open01(o->reference_frac),
			"reference-frac must be in (0, 1), got %g",
			(double)o->reference_frac);
	CHECK(o->reference_min >= 1 && o->reference_min <= o->reference_max &&
			o->reference_max <= EBM_MODEL_MAX_REF,
			"reference bounds must satisfy 1 <= min <= max <= %u",
			EBM_MODEL_MAX_REF);
	CHECK(isfinite(o->val_frac) && o->val_frac >= 0.0f && o->val_frac < 0.5f,
			"val-frac must be in [0, 0.5), got %g", (double)o->val_frac);
	CHECK(in_open01(o->alpha), "alpha must be in (0, 1), got %g",
			(double)o->alpha);
	CHECK(isfinite(o->prec_shrink) && o->prec_shrink > 0.0f &&
			o->prec_shrink <= 1.0f,
			"prec-shrink must be in (0, 1], got %g", (double)o->prec_shrink);
	CHECK(isfinite(o->sigma_min) && o->sigma_min > 0.0f &&
			isfinite(o->sigma_max) && o->sigma_max >= o->sigma_min &&
			o->sigma_max <= 100.0f,
			"sigma range must satisfy 0 < sigma-min <= sigma-max <= 100");
	CHECK(o->n_sigmas >= 1 && o->n_sigmas <= 64,
			"n-sigmas must be 1..64, got %u", o->n_sigmas);
	CHECK(o->cd_steps >= 1 && o->cd_steps <= 10000,
			"cd-steps must be 1..10000, got %u", o->cd_steps);
	CHECK(isfinite(o->cd_step_size) && o->cd_step_size > 0.0f &&
			o->cd_step_size <= 10.0f,
			"cd-step-size must be in (0, 10], got %g", (double)o->cd_step_size);
	CHECK(isfinite(o->cd_noise) && o->cd_noise >= 0.0f &&
			o->cd_noise <= 10.0f,
			"cd-noise must be in [0, 10], got %g", (double)o->cd_noise);
	CHECK(isfinite(o->cd_reinit) && o->cd_reinit >= 0.0f &&
			o->cd_reinit <= 1.0f,
			"cd-reinit must be in [0, 1], got %g", (double)o->cd_reinit);
	CHECK(o->cd_buffer >= 1 && o->cd_buffer <= 10000000,
			"cd-buffer must be 1..10000000, got %u", o->cd_buffer);
	CHECK(o->objective != EBM_OBJECTIVE_CD || o->cd_buffer >= o->batch,
			"cd-buffer (%u) must be at least batch (%u): every chain of a "
			"batch needs its own slot", o->cd_buffer, o->batch);
	CHECK(isfinite(o->cd_energy_reg) && o->cd_energy_reg >= 0.0f,
			"cd-energy-reg must be >= 0, got %g", (double)o->cd_energy_reg);
	CHECK(o->n_protos <= EBM_MODEL_MAX_PROTOS,
			"protos must be 0..%u (0 = none), got %u", EBM_MODEL_MAX_PROTOS,
			o->n_protos);
	CHECK(o->proto_iters <= 1000, "proto-iters must be 0..1000, got %u",
			o->proto_iters);
	CHECK(isfinite(o->proto_alpha) && o->proto_alpha >= 0.0f &&
			o->proto_alpha <= 2.0f,
			"proto-alpha must be in [0, 2], got %g", (double)o->proto_alpha);
	CHECK(isfinite(o->proto_net_weight) && o->proto_net_weight >= 0.0f &&
			o->proto_net_weight <= 100.0f,
			"proto-net-weight must be in [0, 100], got %g",
			(double)o->proto_net_weight);
	CHECK(!o->proto_net_noise || o->proto_net_auto,
			"proto-net-noise changes how --proto-net-weight auto chooses; "
			"it means nothing with a fixed weight (%g)",
			(double)o->proto_net_weight);
	CHECK(o->n_protos == 0 || o->val_frac > 0.0f,
			"protos need validation rows to choose their bandwidth "
			"(val-frac > 0)");
	CHECK(o->n_threads >= 1 && o->n_threads <= 256,
			"threads must be 1..256, got %u", o->n_threads);
	return EBM_STATUS_OK;
}

#undef CHECK

char *ebm_train_options_format(const struct ebm_train_options *o)
{
	char hidden[EBM_MODEL_MAX_LAYERS * 12] = "";
	size_t len = 0;
	for (uint32_t l = 0; l < o->n_layers && l < EBM_MODEL_MAX_LAYERS; l++) {
		len += (size_t)snprintf(hidden + len, sizeof(hidden) - len, "%s%u",
				l ? "," : "", o->hidden[l]);
	}
	/* Each float as the shortest text that reads back as it ("0.001",
	 * not "0.00100000005"). */
	const float v[] = {
		o->lr, o->beta1, o->beta2, o->weight_decay, o->clip_norm,
		o->warmup_frac, o->ema_decay, o->ema_power, o->reference_frac,
		o->val_frac, o->alpha, o->prec_shrink, o->sigma_min, o->sigma_max,
		o->cd_step_size, o->cd_noise, o->cd_reinit, o->cd_energy_reg,
	};
	char fl[sizeof(v) / sizeof(v[0])][32];
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ebm_shortest_float(fl[i], sizeof(fl[i]), v[i]);
	}
	char *buf = ebm_xmalloc(4096);
	int n = snprintf(buf, 4096,
			"objective=%s\nhidden=%s\nmembers=%u\nepochs=%u\nbatch=%u\n"
			"lr=%s\nbeta1=%s\nbeta2=%s\nweight_decay=%s\n"
			"clip=%s\nwarmup=%s\nema=%s\nema_power=%s\npatience=%u\n"
			"reference_frac=%s\nreference_min=%u\nreference_max=%u\n"
			"val_frac=%s\nalpha=%s\nprec_shrink=%s\nscaling=%s\n"
			"sigma_min=%s\nsigma_max=%s\nn_sigmas=%u\n"
			"cd_steps=%u\ncd_step_size=%s\ncd_noise=%s\ncd_reinit=%s\n"
			"cd_buffer=%u\ncd_energy_reg=%s\nseed=%llu\nthreads=%u\n",
			ebm_objective_name(o->objective), hidden, o->n_members, o->epochs,
			o->batch, fl[0], fl[1], fl[2], fl[3], fl[4], fl[5], fl[6],
			fl[7], o->patience, fl[8], o->reference_min, o->reference_max,
			fl[9], fl[10], fl[11], o->robust_scale ? "robust" : "std",
			fl[12], fl[13], o->n_sigmas, o->cd_steps, fl[14], fl[15],
			fl[16], o->cd_buffer, fl[17],
			(unsigned long long)o->seed, o->n_threads);
	/* Without a step budget and without prototypes the record is what it
	 * was before they existed, so --max-steps 0 --protos 0 (with dsm)
	 * gives the earlier files byte for byte. */
	if (n >= 0 && n < 4096 && o->max_steps > 0) {
		n += snprintf(buf + n, 4096 - (size_t)n, "max_steps=%u\n",
				o->max_steps);
	}
	if (n >= 0 && n < 4096 && o->n_protos > 0) {
		char w[32];
		if (o->proto_net_auto) {
			snprintf(w, sizeof(w), o->proto_net_noise ? "auto+noise" : "auto");
		} else {
			snprintf(w, sizeof(w), "%.9g", (double)o->proto_net_weight);
		}
		n += snprintf(buf + n, 4096 - (size_t)n, "protos=%u\nproto_iters=%u\n"
				"proto_alpha=%.9g\nproto_net_weight=%s\n", o->n_protos,
				o->proto_iters, (double)o->proto_alpha, w);
	}
	if (n < 0 || n >= 4096) {
		buf[0] = '\0';
	}
	return buf;
}
