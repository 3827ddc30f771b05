"""What a Prometheus server makes of a /metrics page: the page parsed by the
Prometheus project's own Python parser (python3-prometheus-client), then the
rules of the text format the parser does not enforce checked on what it read.

problems(text) returns a list of what is wrong (empty: a scraper takes it).
"""
import math

from prometheus_client.parser import text_string_to_metric_families


def problems(text):
    found = []
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own refusal, whatever its type
        return ["the Prometheus parser refuses the page: %r" % (e,)]
    if not families:
        return ["no metric families"]
    names = [f.name for f in families]
    for name in set(names):
        if names.count(name) > 1:
            found.append("family %s appears %d times" % (name, names.count(name)))
    for family in families:
        if family.type == "unknown":
            found.append("family %s has no TYPE line" % family.name)
        if not family.documentation:
            found.append("family %s has no HELP text" % family.name)
        for sample in family.samples:
            if math.isnan(sample.value):
                found.append("%s%s is NaN" % (sample.name, sample.labels))
        if family.type == "counter":
            for sample in family.samples:
                if sample.value < 0:
                    found.append("counter %s%s is negative" % (sample.name, sample.labels))
        if family.type == "histogram":
            found += histogram_problems(family)
    return found


def histogram_problems(family):
    """Per label set: buckets cumulative in `le` order, a +Inf bucket equal to
    _count, and a _sum."""
    found = []
    series = {}
    for sample in family.samples:
        labels = dict(sample.labels)
        le = labels.pop("le", None)
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if sample.name.endswith("_bucket"):
            if le is None:
                found.append("%s%s: a bucket without le" % (sample.name, sample.labels))
                continue
            entry["buckets"].append((float(le), sample.value))
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
        elif sample.name.endswith("_sum"):
            entry["sum"] = sample.value
    for key, entry in series.items():
        where = "%s%s" % (family.name, dict(key))
        buckets = sorted(entry["buckets"])
        if not buckets or buckets[-1][0] != math.inf:
            found.append(where + ": no +Inf bucket")
            continue
        for (_, a), (le, b) in zip(buckets, buckets[1:]):
            if b < a:
                found.append("%s: bucket le=%s holds fewer than the one below it" % (where, le))
        if entry["count"] is None or entry["count"] != buckets[-1][1]:
            found.append("%s: _count %s is not the +Inf bucket %s" % (where, entry["count"], buckets[-1][1]))
        if entry["sum"] is None:
            found.append(where + ": no _sum")
    return found
