/*  replay_main.c: feeds files to a fuzz target's LLVMFuzzerTestOneInput,
    so that a build without libFuzzer (gcc, the normal and the sanitizer
    builds) replays the committed corpus.

    Usage: fuzz_replay_NAME PATH...   (a PATH is a file or a directory,
    whose regular files are replayed in name order)

    Exit status 0 when every file was replayed; 1 when a path cannot be
    read or when no file at all was found (an empty or missing corpus is a
    failure, never a skip). A target whose property fails aborts.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_check.h"

#define REPLAY_PATH_SIZE_MAX 4096
#define REPLAY_FILE_SIZE_MAX (64u << 20)

//  Replays one file; 0, or -1 when it cannot be read.
static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
        return -1;
    }
    uint8_t *data = malloc (REPLAY_FILE_SIZE_MAX);
    size_t size = data ? fread (data, 1, REPLAY_FILE_SIZE_MAX, file) : 0;
    int failed = !data || ferror (file);
    fclose (file);
    if (failed) {
        fprintf (stderr, "replay: cannot read %s\n", path);
        free (data);
        return -1;
    }
    //  An exact-size copy, so that the sanitizer sees a read past the end.
    uint8_t *exact = malloc (size ? size : 1);
    if (!exact) {
        free (data);
        return -1;
    }
    memcpy (exact, data, size);
    free (data);
    LLVMFuzzerTestOneInput (exact, size);
    free (exact);
    return 0;
}

static int
s_select_all (const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

//  Replays a file or every file of a directory; adds to *count_p.
static int
s_replay_path (const char *path, size_t *count_p)
{
    struct stat info;
    if (stat (path, &info) != 0) {
        fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
        return -1;
    }
    if (!S_ISDIR (info.st_mode)) {
        (*count_p)++;
        return s_replay_file (path);
    }
    struct dirent **entries = NULL;
    int count = scandir (path, &entries, s_select_all, alphasort);
    if (count < 0) {
        fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char child[REPLAY_PATH_SIZE_MAX];
        int size = snprintf (child, sizeof child, "%s/%s", path, entries[i]->d_name);
        if (rc == 0 && size > 0 && (size_t) size < sizeof child && stat (child, &info) == 0
            && S_ISREG (info.st_mode)) {
            (*count_p)++;
            rc = s_replay_file (child);
        }
        free (entries[i]);
    }
    free (entries);
    return rc;
}

int
main (int argc, char *argv[])
{
    size_t count = 0;
    for (int i = 1; i < argc; i++) {
        if (s_replay_path (argv[i], &count) != 0) {
            return 1;
        }
    }
    if (count == 0) {
        fprintf (stderr, "replay: no input file\n");
        return 1;
    }
    printf ("replayed %zu files\n", count);
    return 0;
}
