/* Guest-side probe for benches/sync_latency.sh; built with `cc -static`.
 *
 *   syncprobe lat DIR BYTES REPS [syncfs]
 *       REPS times: write BYTES (1 MiB writes) to a new file in DIR, close
 *       it, time one sync() (or syncfs() on DIR), then unlink the file and
 *       sync untimed. BYTES=0 writes nothing (an idle sync). One untimed
 *       warm-up round comes first.
 *       Prints: lat op=sync bytes=N n=REPS median_us= p90_us= min_us=
 *       max_us= write_ms= (write_ms: median time of the writes themselves)
 *   syncprobe dd DIR MIB
 *       Writes MIB MiB in 1 MiB writes to DIR/dd, then sync().
 *       Prints: dd mib=N write_ms= sync_ms= total_ms=
 *   syncprobe files DIR COUNT SIZE
 *       Creates COUNT files of SIZE bytes in DIR/files, then sync().
 *       Prints: files n=N size=S create_ms= sync_ms= total_ms=
 *
 * Times come from clock_gettime(CLOCK_MONOTONIC) inside the guest. The
 * data is not zeros (a pattern that changes per write), so nothing can
 * skip it as a hole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static unsigned char buf[CHUNK];

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
    fprintf(stderr, "syncprobe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fill(unsigned seed)
{
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < CHUNK; i += 4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        memcpy(buf + i, &x, 4);
    }
}

static void write_file(const char *path, long long bytes, unsigned seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    while (bytes > 0) {
        size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK;
        buf[0] = (unsigned char)seed++;
        buf[CHUNK / 2] = (unsigned char)(bytes >> 20);
        if (write(fd, buf, n) != (ssize_t)n)
            die("write");
        bytes -= n;
    }
    if (close(fd) != 0)
        die("close");
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest rank: the smallest value with at least P % of the samples <= it */
static double rank(double *v, int n, int p)
{
    int k = (n * p + 99) / 100;
    return v[k < 1 ? 0 : k - 1];
}

static void do_sync(int dirfd)
{
    if (dirfd >= 0) {
        if (syncfs(dirfd) != 0)
            die("syncfs");
    } else {
        sync();
    }
}

static int lat(const char *dir, long long bytes, int reps, int use_syncfs)
{
    char path[4096];
    double *t = calloc(reps, sizeof *t), *w = calloc(reps, sizeof *w);
    int dirfd = -1;
    if (reps < 1) {
        fprintf(stderr, "syncprobe: REPS: must be at least 1\n");
        exit(2);
    }
    if (!t || !w)
        die("calloc");
    if (use_syncfs && (dirfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
        die(dir);
    snprintf(path, sizeof path, "%s/lat", dir);
    fill(1);
    for (int i = -1; i < reps; i++) {
        double a = now_us();
        if (bytes > 0)
            write_file(path, bytes, i + 7);
        double b = now_us();
        do_sync(dirfd);
        double c = now_us();
        if (bytes > 0) {
            if (unlink(path) != 0)
                die("unlink");
            do_sync(dirfd);
        }
        if (i >= 0) {
            w[i] = (b - a) / 1e3;
            t[i] = c - b;
        }
    }
    qsort(t, reps, sizeof *t, cmp);
    qsort(w, reps, sizeof *w, cmp);
    printf("lat op=%s bytes=%lld n=%d median_us=%.0f p90_us=%.0f min_us=%.0f max_us=%.0f write_ms=%.1f\n",
           use_syncfs ? "syncfs" : "sync", bytes, reps, rank(t, reps, 50), rank(t, reps, 90), t[0],
           t[reps - 1], rank(w, reps, 50));
    return 0;
}

static int dd(const char *dir, long long mib)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dd", dir);
    fill(2);
    double a = now_us();
    write_file(path, mib << 20, 3);
    double b = now_us();
    sync();
    double c = now_us();
    printf("dd mib=%lld write_ms=%.1f sync_ms=%.1f total_ms=%.1f\n", mib, (b - a) / 1e3, (c - b) / 1e3,
           (c - a) / 1e3);
    return 0;
}

static int files(const char *dir, int count, long long size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/files", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    fill(3);
    double a = now_us();
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/files/f%05d", dir, i);
        write_file(path, size, i);
    }
    double b = now_us();
    sync();
    double c = now_us();
    printf("files n=%d size=%lld create_ms=%.1f sync_ms=%.1f total_ms=%.1f\n", count, size, (b - a) / 1e3,
           (c - b) / 1e3, (c - a) / 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "lat") == 0)
        return lat(argv[2], atoll(argv[3]), atoi(argv[4]), argc > 5 && strcmp(argv[5], "syncfs") == 0);
    if (argc == 4 && strcmp(argv[1], "dd") == 0)
        return dd(argv[2], atoll(argv[3]));
    if (argc == 5 && strcmp(argv[1], "files") == 0)
        return files(argv[2], atoi(argv[3]), atoll(argv[4]));
    fprintf(stderr, "usage: syncprobe lat DIR BYTES REPS [syncfs] | dd DIR MIB | files DIR COUNT SIZE\n");
    return 2;
}
