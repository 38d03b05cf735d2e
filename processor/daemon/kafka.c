/* Creation of librdkafka handles and the log bridge (kafka.h). */
#include "kafka.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

rd_kafka_conf_t *kf_conf(const cfg_t *cfg, rd_kafka_type_t type, const char *const *extra,
                         char *errstr, size_t errstr_size)
{
    return type == RD_KAFKA_PRODUCER ? cfg_kafka_producer_conf(cfg, extra, errstr, errstr_size)
                                     : cfg_kafka_conf(cfg, extra, errstr, errstr_size);
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
