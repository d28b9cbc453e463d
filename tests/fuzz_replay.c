/*
 * fuzz_replay.c - run a fuzz target's corpus without libFuzzer.  Each
 * argument is a file or a directory of files; every file is read whole
 * into a buffer of exactly its size (so that a sanitizer sees any read
 * past its end) and handed to LLVMFuzzerTestOneInput().  A target aborts
 * on a broken invariant, so a clean exit means every input passed.  This
 * is how a gcc build, and make sanitize, replay tests/fuzz/http/.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one file through the target: 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
    FILE *f;
    struct stat st;
    uint8_t *buf = NULL;
    size_t size;
    int rc = -1;

    if ((f = fopen(path, "rb")) == NULL)
        goto fail;
    if (fstat(fileno(f), &st) < 0)
        goto close;
    size = (size_t)st.st_size;
    /* Exactly size bytes; malloc(0) may give NULL, so one for empty files. */
    if ((buf = malloc(size > 0 ? size : 1)) == NULL)
        goto close;
    if (fread(buf, 1, size, f) != size)
        goto free;
    LLVMFuzzerTestOneInput(buf, size);
    rc = 0;
free:
    free(buf);
close:
    fclose(f);
fail:
    if (rc < 0)
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
    return rc;
}

/* Every regular file directly in dir, in readdir order; -1 on an error. */
static int
replay_dir(const char *dir, size_t *count)
{
    DIR *d;
    struct dirent *e;
    char path[4096];
    int rc = 0;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (replay_file(path) < 0)
            rc = -1;
        else
            (*count)++;
    }
    closedir(d);
    return rc;
}

int
main(int argc, char **argv)
{
    size_t count = 0;
    int i, rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_replay file-or-directory...\n");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) < 0)
                rc = 1;
        } else if (replay_file(argv[i]) < 0) {
            rc = 1;
        } else {
            count++;
        }
    }
    printf("fuzz_replay: %zu inputs passed%s\n", count,
           rc != 0 ? "; some could not be read" : "");
    return rc;
}
