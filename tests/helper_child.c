/*  helper_child.c: a tiny program that test_harness spawns to check what
    the harness promises a child: its environment, its log, its death.

        helper_child sleep SECONDS READY_FILE    write own pid to READY_FILE, sleep
        helper_child group SECONDS PID_FILE      fork a grandchild that sleeps in the
                                                 same process group, write its pid to
                                                 PID_FILE, sleep
        helper_child env NAME OUT_FILE           write getenv (NAME) ("(unset)" if
                                                 unset) to OUT_FILE, exit 0
        helper_child echo TEXT                   "out: TEXT" on stdout, "err: TEXT" on
                                                 stderr, exit 0
        helper_child exit CODE                   exit with CODE

    Files are written whole (to a temporary name, then renamed), so a test
    that polls for a file never reads half of it. Sleeps are bounded by
    SECONDS (at most HELPER_SLEEP_S_MAX).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HELPER_SLEEP_S_MAX 600 //  longest sleep of any mode

static int
s_write_whole (const char *path, const char *text)
{
    char temp_path[4096];
    snprintf (temp_path, sizeof temp_path, "%s.tmp", path);
    FILE *file = fopen (temp_path, "w");
    if (file == NULL) {
        perror (temp_path);
        return -1;
    }
    fputs (text, file);
    if (fclose (file) != 0 || rename (temp_path, path) != 0) {
        perror (path);
        return -1;
    }
    return 0;
}

static int
s_seconds (const char *text)
{
    int seconds = atoi (text);
    if (seconds < 0) {
        return 0;
    }
    return seconds > HELPER_SLEEP_S_MAX ? HELPER_SLEEP_S_MAX : seconds;
}

static void
s_sleep (int seconds)
{
    //  sleep(3) may return early on a signal; go on until the time is up.
    unsigned left_s = (unsigned) seconds;
    while (left_s > 0) {
        left_s = sleep (left_s);
    }
}

static int
s_write_pid (const char *path, pid_t pid)
{
    char text[32];
    snprintf (text, sizeof text, "%d\n", (int) pid);
    return s_write_whole (path, text);
}

int
main (int argc, char *argv[])
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp (mode, "sleep") == 0 && argc == 4) {
        if (s_write_pid (argv[3], getpid ()) != 0) {
            return 1;
        }
        s_sleep (s_seconds (argv[2]));
        return 0;
    }
    if (strcmp (mode, "group") == 0 && argc == 4) {
        pid_t grandchild = fork ();
        if (grandchild < 0) {
            perror ("fork");
            return 1;
        }
        if (grandchild == 0) {
            s_sleep (s_seconds (argv[2]));
            _exit (0);
        }
        if (s_write_pid (argv[3], grandchild) != 0) {
            return 1;
        }
        s_sleep (s_seconds (argv[2]));
        return 0;
    }
    if (strcmp (mode, "env") == 0 && argc == 4) {
        const char *value = getenv (argv[2]);
        return s_write_whole (argv[3], value ? value : "(unset)") == 0 ? 0 : 1;
    }
    if (strcmp (mode, "echo") == 0 && argc == 3) {
        printf ("out: %s\n", argv[2]);
        fflush (stdout);
        fprintf (stderr, "err: %s\n", argv[2]);
        return 0;
    }
    if (strcmp (mode, "exit") == 0 && argc == 3) {
        return atoi (argv[2]);
    }
    fprintf (stderr, "usage: helper_child sleep|group|env|echo|exit ...\n");
    return 2;
}
