/* The experts behind the churn score and their online weighting (DESIGN.md section 5).
 *
 * Three experts score every snapshot:
 *  - recency: a fixed monotone map of days since the last activity (no parameters);
 *  - BG/NBD (bgnbd.h): P(no activity in [T, T+H)) from the user's (x, t_x, T) summary and the
 *    population parameters, refitted by maximum likelihood once per tick on the users the
 *    pipeline holds; it needs no churn labels, so it scores well from the first tick; its
 *    shape (BG/CNBD-k, Erlang-k gaps) is chosen by labels once H of them are graded
 *    (EX_SHAPES);
 *  - the logistic regression on the feature vector, calibrated (calibrator.h).
 * The published probability is a weighted geometric pool of the three,
 *     p = sigmoid(sum_i w_i logit(p_i)),
 * with weights from Hedge (exponentially weighted forecaster) on each expert's mean log-loss
 * per complete tick (every label of the tick known, so no class-dependent delay bias):
 *     w_i = pi_i exp(-eta L_i) / sum_j pi_j exp(-eta L_j),
 * L_i the sum over complete ticks, discounted with half-life EX_HEDGE_HALF_LIFE_DAYS, of the
 * tick's mean log-loss (probabilities clipped to [EX_P_MIN, 1 - EX_P_MIN], so one tick's
 * loss is at most ln(1/EX_P_MIN) = 9.2) scaled by min(1, tick gap / 7 days), so daily and
 * weekly ticks learn at the same rate per week. (Dividing by the entropy of the tick's base
 * rate, so rare churn moves the weights as fast as common churn, was tried: it concentrated
 * the weight on one expert and cost 0.004-0.006 AUC on both shared logs.) Why this pool: log-loss
 * is convex in the logit, so the pool's loss is at most the weighted mean of the experts' losses,
 * and Hedge's weighted mean is within ln(1/pi_i) / eta + eta n 9.2^2 / 8 of expert i's over n
 * ticks, for every sequence of outcomes (without discounting); the pool therefore tracks the best
 * expert from the first complete tick on, on any log, with no labels needed before it.
 * Priors pi: recency EX_PRIOR_RECENCY, the rest split between BG/NBD and the regression;
 * the regression joins (its prior mass goes to BG/NBD until then) once a complete tick has
 * measured it, and its share of the rest ramps linearly from 0 to one half over
 * EX_LOGREG_RAMP_H x H of complete ticks (counted in weeks, undiscounted, so daily and weekly
 * ticks ramp alike). Why: a tick completes H after it starts, and the regression frozen at
 * any tick of the first H had learnt no positive label (they arrive at T + H), so the first H
 * of its track record grades a regression it no longer is, and only the ticks after that
 * grade one that learnt from both classes. Measured at daily ticks it ranked backwards (AUC
 * 0.35-0.49) until about two weeks after the first complete tick, while the old rule gave it
 * 46% of the weight from that tick on (the first daily tick's loss counts 1/7 week, so Hedge
 * had no evidence yet): completejourney2's pooled AUC fell 0.006 below BG/NBD alone, Online
 * Retail's 0.002, and on the simulated BG/NBD logs the pool sat 0.004-0.046 below BG/NBD.
 * With the ramp over H (`bench/generalization.py --tick 1d` / `--tick 7d`,
 * `bench/btyd_sim.py --tick 1d` / `7d`), pooled AUC: Online Retail 0.707 -> 0.715 daily,
 * 0.715 -> 0.718 weekly; completejourney2 0.871 -> 0.886, 0.883 -> 0.885; simulated sparse /
 * retail / grocery 0.695 / 0.732 / 0.906 -> 0.712 / 0.744 / 0.910 daily and 0.667 / 0.719 /
 * 0.909 -> 0.705 / 0.741 / 0.912 weekly (BG/NBD alone 0.713-0.716 / 0.746-0.748 /
 * 0.913-0.914); the 1,500-user subsamples -0.003..+0.012 (the two losses, 0.002 and 0.003,
 * on weekly Online Retail subsamples, still 0.011-0.016 above BG/NBD); second halves within
 * 0.001 of before. Ramp lengths 0.5 H, 0.7 H and H, replayed offline from the experts'
 * scores: shorter ramps keep those two subsamples level but leave the simulated logs up to
 * 0.014 further below BG/NBD; H is also the length the reason above gives. The regret bound
 * above holds against the regression with its smallest prior, pi / (ramp weeks).
 * Tried and not kept (the same offline replay, then the engine): the regression joining only
 * once its discounted loss beats recency's (completejourney2 daily +0.006 pooled, but on a
 * 1,500-user Online Retail subsample recency's flat, well-calibrated map kept a lower
 * log-loss for months and the regression never joined: -0.008); only once it beats BG/NBD's
 * (it never did on completejourney2 at weekly ticks: second half 0.897 -> 0.883); the ramp
 * advancing only on ticks where the regression beats a constant forecaster (the simulated
 * logs reach BG/NBD, but on Online Retail the calibrated regression's log-loss stays above
 * the base rate's entropy while it ranks as well as BG/NBD: both real logs lose 0.005-0.014);
 * grading it only on ticks frozen after the first complete tick (a step at H: +0.013 on
 * completejourney2 daily, -0.002..-0.009 on subsamples and weekly ticks); a shorter
 * half-life (30 d: +0.002..0.005 on the real logs, but the simulated sparse log's second
 * half fell 0.734 -> 0.714 at weekly ticks, since a short memory cannot concentrate the
 * weight on BG/NBD where the regression is worse); eta 0.25 (sparse log -0.006); eta 1-2 and
 * no 1/7 scaling at daily ticks (all lower); a Hedge over a grid of fixed pools (steps of
 * 0.25 on the simplex; no better on the real logs, up to 0.02 worse on the simulated ones); a
 * stacked logistic layer on the three logits (online Newton on complete ticks from the
 * default pool; the simulated logs reach BG/NBD, but subsamples lose 0.006-0.014 pooled and
 * completejourney2's second half 0.898 -> 0.891); not training the regression before the
 * first complete tick (its second half fell 0.891 -> 0.847 on completejourney2). (A smaller
 * prior for the regression, 0.10, brought the simulated BG/NBD logs to within 0.01 of BG/NBD
 * alone but cost 0.004-0.009 AUC on both real logs, where the regression adds what BG/NBD
 * cannot see: kept even.)
 * Tried for the cold start and not kept (2026-12-07; `bench/generalization.py`, `bench/shapes.py`,
 * `bench/btyd_sim.py`): the BG/NBD expert as a Bayesian average of the BG/NBD and the NBD (the
 * same process without drop-out, 2-parameter MLE), weighted by their prequential
 * log-likelihood of the activity between consecutive ticks (LL of this tick's population
 * table minus the previous one's, both at the previous fit: label-free, from the third tick;
 * discounted with the Hedge half-life), used until the first complete tick. On Online Retail
 * the early BG/NBD reads the December rush and January lull as drop-out and ranks backwards
 * (AUC 0.46-0.54 at the holiday ticks of a 1,500-user subsample); the NBD ranks by frequency,
 * and the average raised the first-quarter AUC of Online Retail 0.653 -> 0.665 daily and of
 * its subsamples 0.619 / 0.628 / 0.660 -> 0.672 / 0.654 / 0.660. But one-step predictive
 * likelihood measures who buys next, not who is gone: it chose the NBD on `gen`'s planted
 * log, where drop-out is the whole signal (800 users x 200 days: 0.876 / 0.900 -> 0.786 /
 * 0.760 pooled / second half; 3,000 x 365: 0.923 -> 0.888 pooled), on completejourney2 at
 * daily ticks (-0.002 pooled; 0.898 -> 0.878 in the second half when the average ran past
 * the first complete tick), and the binary version (log-loss of "no activity since the last
 * tick" per user, prototype) chose it on the planted log too. Early on, short-horizon
 * evidence cannot tell a seasonal lull from drop-out; the BG/NBD alone stays.
 * Where the first quarter's pooled AUC goes (2026-12-07 night, offline on the `--snapshots-out` of
 * the 19 shapes of `bench/shapes.py`, daily ticks): much of it is the score's level moving
 * between ticks, not its ranking within a tick. Shifting each tick's logits so their mean
 * matches that tick's churn rate (an oracle: it reads the labels) raises the first quarter
 * by 0.005-0.057 (Online Retail 0.662 -> 0.674, its last 9 months 0.568 -> 0.609, the
 * 300-user subsample 0.560 -> 0.608, the planted 800-user log 0.685 -> 0.742) and the whole
 * log's pooled AUC by up to 0.024. The early fits read Online Retail's December rush as
 * frequent buyers (mean score 0.31 against a churn rate of 0.43 in December-January) and a
 * log cut in mid-life as young customers (0.68 against 0.32). Three label-free remedies,
 * none kept: (1) the level learnt from partial labels, each past tick's users still silent
 * after h < H days, assuming a constant hazard (P(none in h) = P(none in H)^(kappa h / H),
 * kappa fitted on the last 4 weeks of ticks): the three shapes tried fell (first quarter
 * -0.02..-0.20, pooled -0.01..-0.03): survival in these logs is far from a constant hazard;
 * (2) the same with BG/NBD's own P(none in 30 d) (a prototype with calendar-day fits; two
 * shapes): -0.004 and -0.013; (3) each tick's ranking taken from BG/NBD, recency or 90-day
 * frequency, whichever ranked the partial labels (at least 30 days old) best (follow the
 * leader; AUC within ticks, first quarter): regular buyers +0.063, the 300-user Online
 * Retail subsample +0.048, the seasonal shops +0.014..+0.028, but the planted 3,000-user log
 * -0.079 and Pareto/NBD frequent buyers -0.006: who comes back within weeks is not who is
 * gone (the reason the NBD average above failed). Also no gain: shrinking the first 3-28
 * days of ticks' logits toward the tick's mean (the first ticks' fits are degenerate, but
 * they hold few rows); more weight for recency before the first complete tick (its level
 * does not move; 10-40% instead of 5%): Online Retail's cuts +0.002..+0.014 in the first
 * quarter and the planted logs up to +0.02, but completejourney2's cuts -0.002..-0.03
 * pooled, regular buyers -0.008..-0.05 and BG/NBD frequent buyers -0.003..-0.03 in the
 * first quarter.
 * Also tried that day, in an offline prototype of the BTYD expert (weekly ticks, H = L = 90 d,
 * calendar days unless said; AUC pooled / second half), none kept:
 *  - BG/CNBD-k (Erlang-k gaps between purchases, Reutterer, Platzer & Schroeder 2021), k
 *    chosen by likelihood: k = 4 on the regular-buyer shape (bench/regular_gen.py), where it
 *    beats recency (0.831 / 0.845 against BG/NBD's 0.786 / 0.825), but the likelihood also
 *    picks k = 2-3 on both real logs, where it ranks worse (completejourney2 0.880 / 0.887 ->
 *    0.834 / 0.864, Online Retail 0.711 / 0.742 -> 0.699 / 0.743); a latent-class mixture
 *    over k in {1, 2, 4} with each user's posterior (needs the sum of log gaps per user):
 *    completejourney2 0.851 / 0.878. Real customers' regularity is too mixed for it.
 *    (Later that day kept with k chosen by the labels instead, EX_SHAPES: the real logs keep
 *    k = 1, regular buyers get k = 8.)
 *  - Averaging P(none) over the parameters' Laplace posterior (unscented points of the
 *    inverse Hessian), to temper the early fits: the posterior is a long ridge in (a, b),
 *    and the average fell everywhere (Online Retail 1,500-user subsample 0.709 -> 0.697,
 *    planted log 0.864 -> 0.822).
 *  - Averaged iterates for the regression (Polyak-Ruppert with weights growing with t;
 *    exponential, half-lives 300 and 3,000 steps): -0.001..-0.009 on every real log (the
 *    average lags a model that follows a moving population); a smaller step
 *    (model.learning_rate 0.02): Online Retail +0.002, completejourney2 -0.003.
 *  - The regression's minibatch scaled to the tick (224 rows at daily ticks, the same
 *    AdaGrad steps per week of event time as 32 rows at weekly ticks; at daily ticks the
 *    regression alone scores 0.671 / 0.745 on Online Retail's weekly protocol snapshots
 *    against 0.691 / 0.752 at weekly ticks): bench/shapes.py at daily ticks, real-log shapes
 *    -0.002..+0.004 (Online Retail 0.726 / 0.745 -> 0.728 / 0.748), simulated ones
 *    -0.005..+0.001 (regular buyers 0.787 / 0.834 -> 0.782 / 0.830).
 *  - (2026-12-07) At daily ticks, the regression, standardizer and k-means trained only on
 *    the snapshots of ticks on the 7-day grid (one row per user-week, so the model learnt
 *    does not depend on tick.interval; scoring, calibration and grading kept every tick):
 *    Online Retail 0.726 / 0.745 -> 0.730 / 0.751, second-half log-loss 0.5713 -> 0.5664,
 *    all six Online Retail cuts of bench/shapes.py +0.003..+0.008 in the second half; but
 *    the 300-user subsamples (`bench/generalization.py --users 300 --seeds 1,2,3,4,5 --tick
 *    1d`) lost on all five of completejourney2 (-0.001..-0.003 pooled; the regression alone
 *    -0.03..-0.04: a sixth of the positives) and on two of five of Online Retail's (-0.004,
 *    -0.005), and the planted and regular-buyer simulations -0.001..-0.004 pooled: the same
 *    trade between the shop types as the two above.
 *  - (2026-12-07) A Platt recalibration of the published probability (a logit + b, refitted
 *    at each tick by Newton on the complete ticks' rows, 180-day half-life): Online Retail
 *    daily a = 1.01, b = -0.12, second-half log-loss 0.5713 -> 0.5713, pooled 0.5874 ->
 *    0.5893: the pool is calibrated already; its log-loss is its ranking's.
 *  - (2026-12-07, found while unifying replay's tick rule with run's) The learnt model
 *    depends on where batch ends fall (each end trains the regression on the labels queued
 *    since the last, in AdaGrad steps of 32 rows): replay ending its batches every
 *    batch.max_messages events instead of counting them anew after each tick gives Online
 *    Retail weekly 0.7308 / 0.7508 -> 0.7292 / 0.7493 and 1,237 -> 1,064 alerts, daily and
 *    the simulated logs within 0.0002. Differences of about 0.002 between builds or settings
 *    are within this noise of the online learner.
 *  - (2026-12-07, issue 16) Refitting BG/NBD at most once per 7 days of event time at daily
 *    ticks (the refit's population scan, sort and fit are 9% of a daily replay): Online
 *    Retail's replay 9% faster with the same AUC, second halves of bench/shapes.py within
 *    0.0006, but pooled AUC -0.005..-0.011 on completejourney2's cuts and -0.017 on the
 *    planted 800-user log: the early fits move every day, and the cold start needs them.
 * Tried for the regression's weak calibration and not kept (issue 12; the defaults above
 * unchanged; `bench/generalization.py --tick 1d` / `7d`, `bench/btyd_sim.py --tick 1d` / `7d`;
 * before: Online Retail 0.715 / 0.746 daily, 0.718 / 0.752 weekly, pooled / second half, the
 * regression alone 0.672 / 0.746 with log-loss 0.778 daily, 0.692 weekly; completejourney2
 * 0.886 / 0.898, 0.885 / 0.897, the regression's log-loss 0.177). Where the regression's
 * weight goes: its graded loss in the first H is that of a regression that has learnt from
 * negatives only (positives arrive at T + H) with the identity calibration, so its mean
 * probability there is 0.14 against a churn rate of 0.42 on Online Retail and its log-loss
 * 1.06 against BG/NBD's 0.67 in the first quarter of the ticks, 0.84 against 0.60 in the
 * second; the discounted sum keeps that for months.
 *  - Sleeping experts (Freund et al. 1997): a tick frozen before the first complete tick
 *    charges the regression the loss of the pool of the other experts, so its weight starts
 *    level once it has a calibration. Every real-log shape +0.000..+0.004 pooled and second
 *    half at both tick lengths (one weekly subsample -0.001; Online Retail 0.719 / 0.749
 *    daily, 0.722 / 0.755 weekly; completejourney2 0.887 / 0.899, 0.886 / 0.900), but the
 *    simulated sparse log at weekly ticks fell 0.705 -> 0.685 pooled (0.030 below the oracle)
 *    and grocery 0.002-0.004: there the regression is poor throughout (second half 0.56) and
 *    its early losses were what kept its weight down; Hedge learns too slowly from the
 *    awake ticks alone (eta 1.0 with it: sparse 0.684). Charging it recency's loss instead:
 *    completejourney2 0.881 / 0.889. Ramps of 0.5 H and 0 with it: lower on both real logs.
 *  - Holding every labelled row until its tick is complete, then calibrating, grading and
 *    training on the tick at once (no class-dependent delay in the regression's training
 *    stream either; memory: every pending label, so only as an experiment in the predictor):
 *    the regression itself improves most (Online Retail 0.702 / 0.756 with log-loss 0.605
 *    daily, 0.693 / 0.754 and 0.613 weekly; completejourney2 second half 0.895 / 0.896), but
 *    it is untrained (p = 0.5) for the first H, so completejourney2's blend fell to 0.878 /
 *    0.886 daily; with the sleeping rule 0.883 / 0.897 (Online Retail 0.716 / 0.755), yet the
 *    sparse simulated log's second half fell 0.734 -> 0.703 weekly.
 *  - The calibrations of calibrator.h's notes (frozen logits; rows rescored by the current
 *    regression): see there.
 * Why the regression ranks backwards early on the simulated logs: until the first complete
 * tick it has learnt from negatives only and without class weights (the base rate is unknown
 * before a complete tick), so its direction is whatever separates the early negatives; later
 * it is mis-specified rather than mis-trained: on the sparse log (most users 1-3 purchases)
 * its second half is 0.56 weekly and 0.70 daily against BG/NBD's 0.74, and removing the delay
 * from its training stream (the held rows above) moved that only to 0.58 (retail 0.744 ->
 * 0.748, grocery 0.903 unchanged). A linear score in these features cannot express BG/NBD's
 * recency x frequency interaction. Tried as an experiment (the predictor writing BG/NBD's
 * logit P(no activity in H), current parameters, into a feature slot these logs leave at 0,
 * for scoring and learning): the regression's second half on the simulated grocery log rose
 * 0.903 -> 0.926 weekly, but on sparse it fell to 0.520 (0.537 with the held rows above),
 * retail 0.744 -> 0.746, and both real logs moved by at most 0.001 (blend and regression),
 * so the sparse log's regression is not short of that input: what holds it back there is
 * still open (its labels are 70% positive and its users make 1-3 purchases).
 *
 * Prequential losses: labels arrive with a class-dependent delay (a negative at the user's
 * next activity, a positive only at T + H), so scoring a labelled snapshot with the model
 * as it stands at label time would grade negatives by an early model and positives by a
 * model 90 days wiser, and favour whichever expert improves over time (measured: the
 * regression took 76% of the weight on a simulated log where BG/NBD was better in every
 * tick). Instead ex_tick_start() freezes each tick's scorers when its sweep starts (the
 * regression folded with its standardizer into one linear function of x, its calibration,
 * the BG/NBD parameters) and ex_observe() grades every label of tick T with T's frozen
 * scorers: what each expert said at T, whatever the delay. A frozen tick is dropped once
 * the tick is complete (at most H / tick + 1 of them, each EX_FROZEN_BYTES(dim)).
 *
 * Units: summaries and the horizon in days, times in Unix epoch ms. Deterministic: the same
 * calls in the same order give the same bits. */
#ifndef CS_EXPERTS_H
#define CS_EXPERTS_H

#include <stddef.h>
#include <stdint.h>

#include "bgnbd.h"
#include "feat.h"
#include "model_wire.h"
#include "open_days.h"

#define EX_N 3
typedef enum { EX_RECENCY = 0, EX_BGNBD, EX_LOGREG } ex_expert_t;

/* The BTYD expert's shape: BG/CNBD-k (bgnbd.h) with k in ex_shape_k, k = 1 being BG/NBD.
 * Every shape is fitted on the same table (k = 1 at every tick, the others at most once per
 * EX_SHAPE_REFIT_DAYS of event time, warm-started), every shape's P(none) is graded on
 * every labelled row with the tick's frozen parameters, and the expert speaks with the shape
 * of the least discounted mean log-loss over complete ticks (Hedge's discount and scale), k = 1
 * until EX_SHAPE_MIN_H x H of complete ticks are graded. Why labels and not the likelihood:
 * on day-level summaries the likelihood prefers k = 2-3 on both real logs (a gap of less than
 * a day cannot happen, which an exponential gap allows), where k > 1 ranks worse
 * (completejourney2 0.880 -> 0.823 pooled AUC at k = 2); the labels keep k = 1 there and pick
 * k = 8 on regular buyers (bench/regular_gen.py). Why H of evidence: on Online Retail the
 * first complete ticks (the December rush) briefly favour k = 4-8 (pooled -0.008 when the
 * choice starts at the first complete tick, -0.004 after four, none after H), the same
 * reason the regression's prior ramps over H. Prototype figures in the design comment. */
#define EX_SHAPES 4
/* 14 days: 7 gave the same scores on bench/shapes.py's regular buyers, 28 days 0.003-0.004
 * less pooled. The shapes' cost on Online Retail's replay (bench/RESULTS.md, "BTYD shapes"):
 * 11% more instructions at daily ticks (the grading), 21% at weekly ones (the fits). */
#define EX_SHAPE_REFIT_DAYS 14.0
#define EX_SHAPE_MIN_H      1.0
/* The shapes are fitted on at most this many rows of the refit's table (a systematic sample,
 * bgnbd_table_thin): their cost stays bounded as the population grows. */
#define EX_SHAPE_MAX_ROWS 2048
extern const int ex_shape_k[EX_SHAPES];

/* How the pool weighs the experts (config model.experts, same order): Hedge (default),
 * fixed equal weights, or one expert alone (diagnostics and ablations). The grading and
 * the reports run the same whatever the mode. */
typedef enum {
    EX_MODE_HEDGE = 0,
    EX_MODE_EQUAL,
    EX_MODE_BGNBD,
    EX_MODE_LOGREG,
    EX_MODE_RECENCY
} ex_mode_t;

#define EX_P_MIN 1e-4
/* (2026-12-07, `bench/shapes.py`) 0.15 instead: the two shapes where recency ranks best
 * pooled rose a little (regular buyers 0.788 -> 0.794, planted 800 users 0.875 -> 0.877),
 * the real-log shapes moved -0.004..+0.001 pooled and within 0.002 in the second half: kept. */
#define EX_PRIOR_RECENCY 0.05
/* eta = sqrt(8 ln N / n) for N = 3 experts and per-tick mean losses of order 1 over the
 * discount's effective horizon of n ~ 35 weekly ticks (the textbook tuning of Hedge; 1.0
 * concentrated on one expert sooner and scored 0.004-0.007 lower on both shared logs,
 * equal on the simulated ones). */
#define EX_HEDGE_ETA            0.5
#define EX_HEDGE_HALF_LIFE_DAYS 180.0
/* The regression's prior share grows linearly with the weeks of complete ticks graded, from 0
 * to its full (1 - EX_PRIOR_RECENCY) / 2 after EX_LOGREG_RAMP_H x H (design comment). */
#define EX_LOGREG_RAMP_H 1.0
/* Newton steps per refit (warm-started: usually 1-3 are used). */
#define EX_FIT_MAX_ITER 30
/* Pending (incomplete) ticks kept for the weighting; a tick beyond that is not measured. */
#define EX_MAX_PENDING 4096

/* A user's buy-till-you-die summary at a time t, in open days (open_days.h; calendar days
 * when model.open_days is off or the calendar is empty) from the UTC day of the first
 * activity: rep = repeat active days (lifetime active days - 1), t_x = open days from the
 * first active day to the last, age = open days from the first active day to t's day plus
 * the elapsed fraction of t's day, h = the label horizon H in the same unit (H times the
 * share of open days in the 365 days before t's day: the open days the next H calendar
 * days are expected to hold). All 0 but h for a user with no activity. Invariants:
 * 0 <= t_x <= age, rep = 0 => t_x = 0, h > 0. */
typedef struct ex_summary_s {
    double rep, t_x, age, h;
} ex_summary_t;

typedef struct ex_s ex_t;

/* Summary of state st at t_ms (t_ms before the last activity reads at the last activity),
 * in ex's time unit. */
void ex_summary_of(const ex_t *ex, const feat_state_t *st, int64_t t_ms, ex_summary_t *out);

/* Records an activity event's UTC day in the calendar of open days (every accepted activity
 * event; cheap when the day is known). Returns 0, -1 when out of memory. */
int ex_mark_day(ex_t *ex, int64_t day);
/* 1 (default): summaries count open days; 0: calendar days (config model.open_days; not
 * part of the snapshot). The calendar is kept either way. */
void ex_set_open_days(ex_t *ex, int on);
/* 1 (default): open days weighted by lulls (open_days.h); 0: each open day counts 1 (config
 * model.lull_days; not part of the snapshot). */
void ex_set_lull_days(ex_t *ex, int on);
/* 1 (default): the shapes are fitted, graded and may lead (EX_SHAPES); 0: BG/NBD (k = 1)
 * always, with no shape fit or grading (config model.btyd_shapes; not part of the snapshot:
 * a loaded model keeps its shapes' history and speaks with k = 1 while off). */
void ex_set_shapes(ex_t *ex, int on);
const od_t *ex_open_days(const ex_t *ex);

/* What every expert says about one snapshot, and the pool. Probabilities of churn. */
typedef struct ex_scores_s {
    double p[EX_N];
    double blend;
    /* ex_grade only: every shape's P(none) under the frozen tick (shapes = 1), else shapes
     * = 0 and shape_p unset. */
    double shape_p[EX_SHAPES];
    int shapes;
} ex_scores_t;

/* horizon_days: H of the labels (> 0). NULL on a bad argument or out of memory. */
ex_t *ex_new(double horizon_days);
void ex_destroy(ex_t *ex);

double ex_horizon_days(const ex_t *ex);
/* The label horizon of the configuration that loads a snapshot (> 0; ignored otherwise). */
void ex_set_horizon_days(ex_t *ex, double horizon_days);

/* The weighting mode (not part of the snapshot: the configuration decides). */
void ex_set_mode(ex_t *ex, ex_mode_t mode);

/* The recency expert alone (no state): a monotone map of days since the last activity. */
double ex_recency_prior(double days_since_activity);

/* Scores one snapshot: p_logreg is the calibrated regression's probability. */
void ex_score(const ex_t *ex, const ex_summary_t *s, double p_logreg, ex_scores_t *out);

/* What the recency and BTYD experts add to the pool's logit for summary s against a reference
 * summary ref (the population's typical user, model_explain), split over three inputs: quiet
 * days (age - t_x), repeat days (rep) and active span (t_x; age = span + quiet days). The
 * BTYD part is the Shapley value of each input in the BTYD expert's logit (its 8 combinations
 * of user's and reference's inputs; the three parts add up to the logit's difference), the
 * recency part (quiet days only) its logit's difference; each times its pool weight now. */
#define EX_EXPLAIN_N 3
enum { EX_EXPLAIN_QUIET = 0, EX_EXPLAIN_REPEAT = 1, EX_EXPLAIN_SPAN = 2 };
void ex_explain(const ex_t *ex, const ex_summary_t *s, const ex_summary_t *ref,
                double out[EX_EXPLAIN_N]);

/* Refits BG/NBD on table (summaries at tick_ms), warm-started from the current fit; records
 * tick_ms as the fit's tick. Returns 0, or -1 when the table cannot identify the model (no
 * repeat activity yet): the previous parameters stay. */
int ex_refit(ex_t *ex, const bgnbd_table_t *table, int64_t tick_ms);
/* The shapes' last refit tick (INT64_MIN: never; ex_refit refits them at most once per
 * EX_SHAPE_REFIT_DAYS), and a refit of them made by another copy, replayed (model journals):
 * p holds the parameters of shapes 1 .. EX_SHAPES - 1. */
int64_t ex_shapes_fit_tick_ms(const ex_t *ex);
void ex_shapes_set(ex_t *ex, int64_t tick_ms, const bgnbd_params_t p[EX_SHAPES - 1]);
/* The shape the BTYD expert speaks with (index into ex_shape_k), and every shape's
 * discounted mean log-loss over complete ticks (NaN before the first). */
int ex_shape(const ex_t *ex);
/* Shape s's parameters (s < EX_SHAPES; s = 0 is ex_bgnbd_params). */
const bgnbd_params_t *ex_shape_params(const ex_t *ex, int s);
void ex_shape_losses(const ex_t *ex, double mean[EX_SHAPES]);
/* A fit made by another copy of the model, replayed (model journals): tick_ms becomes the
 * fit's tick, as after ex_refit; with p non-NULL (the fit succeeded) the parameters and
 * stats too, else the previous parameters stay. */
void ex_fit_set(ex_t *ex, int64_t tick_ms, const bgnbd_params_t *p, double users, double loglik,
                int iterations);
/* Tick of the last refit attempt (INT64_MIN before the first). */
int64_t ex_fit_tick_ms(const ex_t *ex);
const bgnbd_params_t *ex_bgnbd_params(const ex_t *ex);
/* Users and log-likelihood of the last successful fit (0 before). */
void ex_fit_stats(const ex_t *ex, double *users, double *loglik, int *iterations);

/* Freezes the scorers of tick tick_ms (call when its sweep starts): coef[0..dim) and
 * coef[dim] (bias) give the regression's raw logit as coef . x + bias on the unstandardized
 * row, cal_a / cal_b its calibration (p = sigmoid(cal_a clamp(logit, +-CAL_LOGIT_MAX) +
 * cal_b)); the BG/NBD parameters are the current ones. dim is fixed by the first call.
 * Returns 0, -1 on out of memory, a dim mismatch or EX_MAX_PENDING frozen ticks. */
int ex_tick_start(ex_t *ex, int64_t tick_ms, const double *coef, int dim, double cal_a,
                  double cal_b);
#define EX_FROZEN_BYTES(dim) (8 * (7 + (dim) + 1))

/* 1 when a frozen tick grades labels of tick_ms (ex_observe then ignores `now`). */
int ex_frozen_covers(const ex_t *ex, int64_t tick_ms);

/* A labelled snapshot of tick_ms (row x[dim], summary s): graded by the scorers frozen at
 * the latest ex_tick_start <= tick_ms, or by `now` (the current model's scores) when there
 * is none (a model loaded without that tick). Its losses go into the tick's total. Returns
 * 0, -1 on out of memory or EX_MAX_PENDING ticks pending. `now` may be NULL when
 * ex_frozen_covers(tick_ms). */
int ex_observe(ex_t *ex, int64_t tick_ms, const float *x, const ex_summary_t *s, int y,
               const ex_scores_t *now);
/* ex_observe in two steps, the first read-only (so a team may grade a batch's rows at once):
 * ex_grade fills *out with the frozen scorers' probabilities for the row and returns 1, or
 * returns 0 when no frozen tick covers tick_ms; ex_observe_graded adds the row's losses
 * under those probabilities (or `now`'s, for a row ex_grade returned 0 for). */
int ex_grade(const ex_t *ex, int64_t tick_ms, const float *x, const ex_summary_t *s,
             ex_scores_t *out);
/* sc: ex_grade's, or ex_score's for `now` (whose shapes flag is 0: the shapes are graded by
 * frozen ticks only); every field read, so a hand-built one must set shapes. */
int ex_observe_graded(ex_t *ex, int64_t tick_ms, int y, const ex_scores_t *sc);
/* Every tick <= through_ms is complete: folds their losses into the weights, in tick
 * order. Returns the number of ticks folded. */
int ex_complete_through(ex_t *ex, int64_t through_ms);
/* Current weights (sum 1) and the discounted losses behind them; complete ticks folded. */
void ex_weights(const ex_t *ex, double w[EX_N]);
void ex_losses(const ex_t *ex, double loss[EX_N], uint64_t *ticks_folded);
/* Each expert's graded log-loss per snapshot, as a discounted mean over the complete ticks
 * (NaN before the first): what the weights are made of, for /metrics and reports. */
void ex_mean_losses(const ex_t *ex, double mean[EX_N]);
/* Churn rate of the complete ticks (discounted like the losses): the class balance with no
 * delay bias, for the regression's class weights; NaN before the first complete tick. */
double ex_base_rate(const ex_t *ex);
/* The regression's prior as a fraction of its full share: 0 before the first complete tick,
 * then min(1, weeks of complete ticks graded / (EX_LOGREG_RAMP_H H / 7 d)). */
double ex_logreg_share(const ex_t *ex);

const char *ex_name(ex_expert_t e);

void ex_encode(const ex_t *ex, mw_buf_t *b);
/* format: the snapshot's (model.h); before 5 there is no calendar (it starts empty: the
 * history before the upgrade reads as calendar time). */
ex_t *ex_decode(mw_reader_t *r, int format, char *errstr, size_t errstr_size);
/* The shapes' section (format 6, after the segment names): their parameters, losses and
 * leader, and the pending and frozen ticks' shape figures (of ex's own pending and frozen
 * ticks, so it follows ex_decode). Before format 6 the shapes start as ex_new leaves them,
 * with no history: the frozen ticks grade no shape and k = 1 speaks until the shapes have
 * H of their own evidence. ex_decode_shapes returns 0, or -1 on a corrupt section. */
void ex_encode_shapes(const ex_t *ex, mw_buf_t *b);
int ex_decode_shapes(ex_t *ex, mw_reader_t *r);

#endif
