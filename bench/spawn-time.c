/*
 * spawn-time - average wall time of fork+exec+exit+wait of a program, the
 * way mod_cgi runs a CGI program: spawn-time N PROGRAM. stdin and stdout
 * are /dev/null; the environment is passed on. Prints "PROGRAM: X us".
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spawn-time N PROGRAM\n");
        return 2;
    }
    int n = atoi(argv[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        pid_t p;
        char *av[] = {argv[2], NULL};
        if (posix_spawn(&p, argv[2], &fa, NULL, av, environ) != 0) {
            perror("posix_spawn");
            return 1;
        }
        waitpid(p, NULL, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    printf("%s: %.0f us\n", argv[2], us);
    return 0;
}
