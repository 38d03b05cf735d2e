/* dm_metrics: the Prometheus rendering of the daemon's counters (exact sample lines,
 * cumulative histogram buckets, per-reason and per-partition series) and the /healthz
 * verdict in each state. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dm_metrics.h"

/* The sample line `series value` must appear exactly (a whole line). */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return;
    fail_msg("line \"%s\" not in:\n%s", line, text);
}

static void test_render_counters_and_labels(void **state)
{
    (void)state;
    dm_metrics_t m;
    dm_metrics_init(&m);
    atomic_fetch_add(&m.events_in, 19990);
    atomic_fetch_add(&m.events_rejected[EV_ERR_UNDECODABLE], 3);
    atomic_fetch_add(&m.events_rejected[EV_ERR_NON_FINITE_AMOUNT], 2);
    atomic_fetch_add(&m.dlq_produced, 5);
    atomic_fetch_add(&m.alerts[1][2], 7);
    atomic_fetch_add(&m.redis_round_trips, 42);
    atomic_fetch_add(&m.phase_us[1], 1500000);
    atomic_fetch_add(&m.phase_us[4], 250);
    atomic_fetch_add(&m.redis_wait_us, 750000);
    atomic_store(&m.assigned_partitions, 4);
    int32_t parts[2] = {0, 3};
    int64_t lag[2] = {12, 0};
    dm_metrics_set_lag(&m, parts, lag, 2);
    char *t = dm_metrics_render(&m, 1000000);
    assert_non_null(t);
    static const char *const want[] = {
        "churnstream_events_in_total 19990",
        "churnstream_events_rejected_total{reason=\"undecodable\"} 3",
        "churnstream_events_rejected_total{reason=\"unknown_schema\"} 0",
        "churnstream_events_rejected_total{reason=\"missing_user_id\"} 0",
        "churnstream_events_rejected_total{reason=\"user_id_too_long\"} 0",
        "churnstream_events_rejected_total{reason=\"non_finite_amount\"} 2",
        "churnstream_events_rejected_total{reason=\"time_out_of_window\"} 0",
        "churnstream_dlq_produced_total 5",
        "churnstream_dlq_failed_total 0",
        "churnstream_alerts_total{arm=\"treatment\",bucket=\"low\"} 0",
        "churnstream_alerts_total{arm=\"holdout\",bucket=\"high\"} 7",
        "churnstream_redis_round_trips_total 42",
        "churnstream_batch_phase_seconds_total{phase=\"decode\"} 0.000000",
        "churnstream_batch_phase_seconds_total{phase=\"apply\"} 1.500000",
        "churnstream_batch_phase_seconds_total{phase=\"collect\"} 0.000250",
        "churnstream_redis_wait_seconds_total 0.750000",
        "# TYPE churnstream_batch_phase_seconds_total counter",
        "churnstream_consumer_lag{partition=\"0\"} 12",
        "churnstream_consumer_lag{partition=\"3\"} 0",
        "churnstream_watermark_lag_seconds NaN",
        "churnstream_assigned_partitions 4",
        "churnstream_handler_healthy 1",
        "# TYPE churnstream_batch_seconds histogram",
        "# TYPE churnstream_events_in_total counter",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_line(t, want[i]);
    free(t);

    atomic_store(&m.watermark_ms, 400000);
    t = dm_metrics_render(&m, 1000000);
    assert_line(t, "churnstream_watermark_lag_seconds 600.000");
    free(t);
    dm_metrics_destroy(&m);
}

static void test_histogram_buckets_cumulative(void **state)
{
    (void)state;
    dm_metrics_t m;
    dm_metrics_init(&m);
    /* value -> bucket: on a bound counts in that bucket (le), above 10 s in +Inf only. */
    static const double obs[] = {0.0005, 0.001, 0.003, 0.2, 0.2, 11.0};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        dm_metrics_observe_batch(&m, obs[i]);
    char *t = dm_metrics_render(&m, 0);
    static const char *const want[] = {
        "churnstream_batch_seconds_bucket{le=\"0.001\"} 2",
        "churnstream_batch_seconds_bucket{le=\"0.0025\"} 2",
        "churnstream_batch_seconds_bucket{le=\"0.005\"} 3",
        "churnstream_batch_seconds_bucket{le=\"0.1\"} 3",
        "churnstream_batch_seconds_bucket{le=\"0.25\"} 5",
        "churnstream_batch_seconds_bucket{le=\"10\"} 5",
        "churnstream_batch_seconds_bucket{le=\"+Inf\"} 6",
        "churnstream_batch_seconds_count 6",
        "churnstream_batch_seconds_sum 11.404500",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_line(t, want[i]);
    free(t);
    dm_metrics_destroy(&m);
}

static void test_health_states(void **state)
{
    (void)state;
    dm_metrics_t m;
    dm_metrics_init(&m);
    char buf[512];
    struct {
        int healthy, fatal, stopping, assigned, kafka;
        int status;
        const char *text;
    } cases[] = {
        {1, 0, 0, 0, 1, 200, "ok: 0 partitions assigned (waiting for an assignment)\n"},
        {1, 0, 0, 4, 1, 200, "ok: 4 partitions assigned\n"},
        {0, 0, 0, 4, 1, 503, "fail: handler: redis down\n"},
        {1, 1, 0, 4, 1, 503, "fail: fatal Kafka error\n"},
        {1, 0, 1, 4, 1, 503, "fail: shutting down\n"},
        /* no assignment for too long (broker unreachable): never "ok ... waiting" forever */
        {1, 0, 0, 0, 0, 503, "fail: kafka: no partition assignment for 16 s\n"},
        {0, 0, 0, 0, 0, 503, "fail: kafka: no partition assignment for 16 s\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dm_metrics_set_health(&m, cases[i].healthy, cases[i].healthy ? NULL : "redis down");
        dm_metrics_set_kafka(&m, cases[i].kafka,
                             cases[i].kafka ? NULL : "no partition assignment for 16 s");
        atomic_store(&m.consumer_fatal, cases[i].fatal);
        atomic_store(&m.stopping, cases[i].stopping);
        atomic_store(&m.assigned_partitions, cases[i].assigned);
        assert_int_equal(dm_metrics_health(&m, buf, sizeof(buf)), cases[i].status);
        assert_string_equal(buf, cases[i].text);
    }
    dm_metrics_destroy(&m);
}

/* The experts' series: NaN (Prometheus spelling) until a batch reports them, then the
 * values of the last report, one sample per expert. */
static void test_expert_series(void **state)
{
    (void)state;
    dm_metrics_t m;
    dm_metrics_init(&m);
    char *t = dm_metrics_render(&m, 1000000);
    assert_line(t, "churnstream_expert_weight{expert=\"bgnbd\"} NaN");
    assert_line(t, "churnstream_expert_logloss{expert=\"logreg\"} NaN");
    assert_line(t, "churnstream_btyd_shape_k NaN");
    free(t);
    const double w[3] = {0.05, 0.75, 0.2}, l[3] = {0.5, 0.25, NAN};
    dm_metrics_set_experts(&m, w, l, 4);
    t = dm_metrics_render(&m, 1000000);
    assert_line(t, "churnstream_expert_weight{expert=\"recency\"} 0.05");
    assert_line(t, "churnstream_expert_weight{expert=\"bgnbd\"} 0.75");
    assert_line(t, "churnstream_expert_weight{expert=\"logreg\"} 0.2");
    assert_line(t, "churnstream_expert_logloss{expert=\"bgnbd\"} 0.25");
    assert_line(t, "churnstream_expert_logloss{expert=\"logreg\"} NaN");
    assert_line(t, "churnstream_btyd_shape_k 4");
    free(t);
    dm_metrics_destroy(&m);
}

static void test_outcome_series(void **state)
{
    (void)state;
    dm_metrics_t m;
    dm_metrics_init(&m);
    char *t = dm_metrics_render(&m, 1000000);
    assert_line(t, "churnstream_alert_uplift{kind=\"all\"} NaN");
    free(t);
    /* treatment 75/100 retained, holdout 25/100: uplift 0.5 +- 1.959964 sqrt(0.00375) =
     * 0.5 +- 0.120024. */
    dm_metrics_add_outcome(&m, 0, "lapsed", "win-back campaign", "retained", 60);
    dm_metrics_add_outcome(&m, 0, "lapsed", "win-back campaign", "retained", 15);
    dm_metrics_add_outcome(&m, 0, "lapsed", "win-back campaign", "not_retained", 25);
    dm_metrics_add_outcome(&m, 1, "lapsed", "win-back campaign", "retained", 25);
    dm_metrics_add_outcome(&m, 1, "lapsed", "win-back campaign", "not_retained", 75);
    dm_metrics_add_outcome(&m, 1, "lapsed", "win-back campaign", "repeat", 7);
    dm_metrics_add_outcome(&m, 0, "at_risk", "say \"hi\"", "retained", 1);
    t = dm_metrics_render(&m, 1000000);
    assert_line(t, "churnstream_alert_outcomes_total{arm=\"treatment\",kind=\"lapsed\","
                   "action=\"win-back campaign\",outcome=\"retained\"} 75");
    assert_line(t, "churnstream_alert_outcomes_total{arm=\"holdout\",kind=\"lapsed\","
                   "action=\"win-back campaign\",outcome=\"repeat\"} 7");
    assert_line(t, "churnstream_alert_outcomes_total{arm=\"treatment\",kind=\"at_risk\","
                   "action=\"say \\\"hi\\\"\",outcome=\"retained\"} 1");
    assert_line(t, "churnstream_alert_uplift{kind=\"lapsed\"} 0.5");
    assert_non_null(strstr(t, "churnstream_alert_uplift_lo{kind=\"lapsed\"} 0.37997"));
    assert_non_null(strstr(t, "churnstream_alert_uplift_hi{kind=\"lapsed\"} 0.62002"));
    assert_line(t, "churnstream_alert_uplift{kind=\"at_risk\"} NaN");
    free(t);
    dm_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counters_and_labels),
        cmocka_unit_test(test_histogram_buckets_cumulative),
        cmocka_unit_test(test_health_states),
        cmocka_unit_test(test_expert_series),
        cmocka_unit_test(test_outcome_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
