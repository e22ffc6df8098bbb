"""``psutil.virtual_memory()[2]``, the percentage of memory in use, counted for this process only
(its resident set over /proc/meminfo's total) so that other programs on the machine cannot fail the test."""


def _kilobytes(path, field):
    with open(path) as lines:
        for line in lines:
            name, value = line.split(":")
            if name == field:
                return int(value.split()[0])
    raise KeyError(field)


def virtual_memory():
    total = _kilobytes("/proc/meminfo", "MemTotal")
    resident = _kilobytes("/proc/self/status", "VmRSS")
    return (total, total - resident, 100.0 * resident / total)
