/*
 * The node bed's pod sandbox process (the CRI "pause" container): it holds
 * the pod's namespaces, sleeps until SIGTERM or SIGINT and reaps orphaned
 * children. Built static so the image needs nothing but this file.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
	(void)sig;
	while (waitpid(-1, 0, WNOHANG) > 0) {
	}
}

int main(void) {
	struct sigaction sa = {0};
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, 0);
	sigaction(SIGINT, &sa, 0);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, 0);
	for (;;)
		pause();
}
