/* Creation of librdkafka handles and the log bridge (kafka.h). */
#include "kafka.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every consumer's prefetch. librdkafka before 2.2 stops fetching a partition for a fixed
 * second once its local queue holds queued.min.messages (default 100,000) or
 * queued.max.messages.kbytes (default 65,536): a consumer that drains a backlog faster than
 * that starves (run caught up at 0.17-0.19 of kcat's rate, waiting in the poll two thirds of
 * the time; confluentinc/librdkafka#2879). The message count is lifted so the byte bound
 * alone applies, and that bound is 16 MiB per partition: a second's backlog at our rate. */
static const char *const consumer_defaults[] = {"queued.min.messages", "1000000",
                                                "queued.max.messages.kbytes", "16384"};

#define KF_EXTRA_MAX 32 /* name/value strings of one extra list, plus the defaults */

rd_kafka_conf_t *kf_conf(const cfg_t *cfg, rd_kafka_type_t type, const char *const *extra,
                         char *errstr, size_t errstr_size)
{
    if (type == RD_KAFKA_PRODUCER)
        return cfg_kafka_producer_conf(cfg, extra, errstr, errstr_size);
    const char *all[KF_EXTRA_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof consumer_defaults / sizeof consumer_defaults[0]; i++)
        all[n++] = consumer_defaults[i];
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n == KF_EXTRA_MAX) {
            snprintf(errstr, errstr_size, "too many Kafka properties set by the program");
            return NULL;
        }
        all[n++] = extra[i];
    }
    all[n] = NULL;
    return cfg_kafka_conf(cfg, all, errstr, errstr_size);
}

rd_kafka_t *kf_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    char kerr[512];
    rd_kafka_conf_set_log_cb(conf, kf_log_cb);
    rd_kafka_t *rk = rd_kafka_new(type, conf, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the Kafka %s: %s",
                 type == RD_KAFKA_PRODUCER ? "producer" : "consumer", kerr);
    }
    return rk;
}

rd_kafka_t *kf_reader(const cfg_t *cfg, const char *cmd, char *errstr, size_t errstr_size)
{
    static const char *const extra[] = {"enable.auto.commit",
                                        "false",
                                        "enable.auto.offset.store",
                                        "false",
                                        "enable.partition.eof",
                                        "false",
                                        NULL};
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_CONSUMER, extra, errstr, errstr_size);
    if (!conf)
        return NULL;
    char group[96];
    snprintf(group, sizeof group, "churnstream-%s-%ld", cmd, (long)getpid());
    if (rd_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = kf_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (rk)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

void kf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_level_t l = level <= 3   ? LOG_ERROR
                    : level == 4 ? LOG_WARN
                    : level <= 6 ? LOG_INFO
                                 : LOG_DEBUG;
    /* Producers share the kafka.* keys with consumers on purpose (one security setup):
     * their "consumer property ignored" warnings are expected, not news. */
    if (rd_kafka_type(rk) == RD_KAFKA_PRODUCER && strcmp(fac, "CONFWARN") == 0)
        l = LOG_DEBUG;
    log_emit(l, "kafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

double kf_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int kf_assign_all(rd_kafka_t *rk, const char *topic, int from_beginning, double deadline_s,
                  volatile const sig_atomic_t *stop, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    int nparts = 0;
    while (!*stop) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
        if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
            nparts = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (nparts > 0 || (deadline_s > 0 && kf_mono_s() > deadline_s))
            break;
        if (err && err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT)
            log_debug("kafka", "metadata of %s: %s", topic, rd_kafka_err2str(err));
        usleep(200 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    if (nparts == 0)
        return 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        snprintf(errstr, errstr_size, "assign %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return nparts;
}
