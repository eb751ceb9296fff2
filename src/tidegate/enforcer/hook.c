/*
 * The OCI runtime hook, compiled: the same program as hook.py, without an interpreter to start.
 *
 * The container runtime (podman, CRI-O, runc) runs the hook at the `createRuntime` stage with
 * the container state on stdin. The hook passes that state, as it came, to the local enforcer
 * over its unix socket and exits 0 to let the start go on, or 1 with the enforcer's message on
 * stderr to refuse it. When the enforcer cannot be asked, the group's fail mode (kept by the
 * agent in STATE_DIR/hook-fail-mode) decides: `open` lets the container start, `closed`
 * refuses it. Bad options exit 2.
 *
 *     tidegate-oci-hook [--socket PATH] [--state-dir DIR] [--timeout SECONDS]
 *
 * The socket protocol: the hook sends the state bytes and shuts its write side; the answer is
 * one line `allow` or `deny`, then the text for stderr (warnings, or the deny message).
 *
 * hook.py is the reference: options, messages, exit codes and limits here are the same, byte
 * for byte, and tests/enforcer/test_hook_compiled.py runs both through the same cases. Python's
 * phrasing is reproduced where it shows: an OS error reads "[Errno N] text", a timeout "timed
 * out", a strange verdict is quoted as Python's repr of bytes.
 *
 * Everything the hook reads is treated as hostile: the state on stdin is capped at MAX_STATE,
 * the answer at MAX_ANSWER, every wait on the socket is bounded by one deadline (--timeout
 * seconds for the whole exchange), and EINTR is retried. Plain C99 on libc only; built by
 * tidegate.enforcer.hookbuild with `cc -O2 -Wall -Wextra -Werror`.
 */

#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC, MSG_NOSIGNAL, O_CLOEXEC */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/lib/tidegate/enforcer/enforcer.sock"
#define DEFAULT_TIMEOUT 5.0
#define MAX_TIMEOUT 3600.0
#define MAX_TIMEOUT_TEXT "3600"
#define MAX_STATE (1024 * 1024)
#define MAX_ANSWER (1024 * 1024)
#define FAIL_MODE_FILE "hook-fail-mode"
#define FAIL_MODE_READ 64        /* hook.py reads this much of the fail-mode file */
#define VERDICT_SHOWN 80         /* bytes of a strange verdict quoted in the message */
#define ERROR_SIZE 256           /* room for "[Errno N] text" */

#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_USAGE 2

struct options {
    const char *socket;
    const char *state_dir; /* NULL: the socket's directory, as os.path.dirname gives it */
    double timeout;
};

/* Bytes read into one malloc'd block sized for its cap (MAX_STATE + 1, MAX_ANSWER). */
struct buffer {
    char *data;
    size_t len;
};

/* A message in pieces, written one after the other: the pieces may be as long as an argument
 * (paths, option values), so they are never copied into a fixed buffer. */
struct message {
    const char *part[4];
};

/* ---- output ------------------------------------------------------------------------------ */

/* Write all of `len` bytes to stderr. Errors are ignored: a runtime that closed our stderr
 * must not change the verdict (SIGPIPE is ignored in main). */
static void say(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void say_str(const char *text) { say(text, strlen(text)); }

static void say_message(const struct message *m)
{
    for (size_t i = 0; i < sizeof m->part / sizeof m->part[0]; i++)
        if (m->part[i])
            say_str(m->part[i]);
}

/* ---- options ----------------------------------------------------------------------------- */

/* Seconds above 0 and at most MAX_TIMEOUT, in decimal digits, '.', 'e', signs only: the same
 * strings hook.py accepts (strtod alone would also take hex, "inf", "nan" and spaces). The
 * locale is never set, so strtod reads '.' as the decimal point. */
static int parse_timeout(const char *value, double *seconds)
{
    char *end = NULL;
    if (*value == '\0' || strspn(value, "0123456789.eE+-") != strlen(value))
        return -1;
    *seconds = strtod(value, &end);
    if (end == value || *end != '\0')
        return -1;
    return (*seconds > 0.0 && *seconds <= MAX_TIMEOUT) ? 0 : -1;
}

/* Options come in pairs, later ones win; on error, `error` says what (hook.py's wording). */
static int parse_args(int argc, char **argv, struct options *opts, struct message *error)
{
    opts->socket = DEFAULT_SOCKET;
    opts->state_dir = NULL;
    opts->timeout = DEFAULT_TIMEOUT;
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i];
        if (i + 1 >= argc) {
            *error = (struct message){{"option ", arg, " needs a value", NULL}};
            return -1;
        }
        const char *value = argv[i + 1];
        if (strcmp(arg, "--socket") == 0) {
            opts->socket = value;
        } else if (strcmp(arg, "--state-dir") == 0) {
            opts->state_dir = *value ? value : NULL;
        } else if (strcmp(arg, "--timeout") == 0) {
            if (parse_timeout(value, &opts->timeout) != 0) {
                *error = (struct message){
                    {"option --timeout needs seconds above 0 and at most " MAX_TIMEOUT_TEXT
                     ", not ",
                     value, NULL, NULL}};
                return -1;
            }
        } else {
            *error = (struct message){{"unknown option ", arg, NULL, NULL}};
            return -1;
        }
    }
    return 0;
}

/* ---- paths, as Python's posixpath computes them ------------------------------------------- */

/* os.path.dirname(path), malloc'd: up to the last '/', trailing slashes dropped unless the
 * head is all slashes ("/a/b" -> "/a", "/b" -> "/", "b" -> ""). */
static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) + 1 : 0;
    size_t keep = len;
    while (keep > 0 && path[keep - 1] == '/')
        keep--;
    if (keep > 0)
        len = keep; /* otherwise the head is all slashes and stays as it is */
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, path, len);
        out[len] = '\0';
    }
    return out;
}

/* os.path.join(dir, name) for a relative `name`, malloc'd. */
static char *join(const char *dir, const char *name)
{
    size_t dlen = strlen(dir), nlen = strlen(name);
    int sep = dlen > 0 && dir[dlen - 1] != '/';
    char *out = malloc(dlen + (size_t)sep + nlen + 1);
    if (out) {
        memcpy(out, dir, dlen);
        if (sep)
            out[dlen] = '/';
        memcpy(out + dlen + (size_t)sep, name, nlen + 1);
    }
    return out;
}

/* ---- fail mode ---------------------------------------------------------------------------- */

static int is_space(unsigned char c)
{
    /* Python's bytes.strip() set: space, \t, \n, \v, \f, \r */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* True unless STATE_DIR/hook-fail-mode says `closed` (surrounding whitespace ignored): no
 * agent ever ran here, or its file cannot be read, means open. */
static int fail_open(const char *state_dir)
{
    char *path = join(state_dir, FAIL_MODE_FILE);
    if (!path)
        return 1;
    /* O_NONBLOCK: a FIFO planted there must not hang the container start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    free(path);
    if (fd < 0)
        return 1;
    char text[FAIL_MODE_READ];
    size_t len = 0;
    while (len < sizeof text) {
        ssize_t n = read(fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    size_t start = 0, end = len;
    while (start < end && is_space((unsigned char)text[start]))
        start++;
    while (end > start && is_space((unsigned char)text[end - 1]))
        end--;
    return !(end - start == 6 && memcmp(text + start, "closed", 6) == 0);
}

/* The start goes on or not without a decision: the fail mode says which, stderr says why. */
static int undecided(const struct message *reason, const char *state_dir)
{
    int allowed = fail_open(state_dir);
    say_str(allowed ? "tidegate: allowed without a decision (fail-open): "
                 : "tidegate: refused without a decision (fail-closed): ");
    say_message(reason);
    say_str("\n");
    return allowed ? EXIT_ALLOW : EXIT_DENY;
}

/* ---- the container state ----------------------------------------------------------------- */

/* Read stdin to EOF, keeping at most MAX_STATE + 1 bytes (one more tells "too big").
 * 0, or -1 with errno set. */
static int read_state(struct buffer *state)
{
    state->len = 0;
    state->data = malloc(MAX_STATE + 1);
    if (!state->data)
        return -1;
    while (state->len < MAX_STATE + 1) {
        ssize_t n = read(STDIN_FILENO, state->data + state->len, MAX_STATE + 1 - state->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        state->len += (size_t)n;
    }
    return 0;
}

static int all_space(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_space((unsigned char)data[i]))
            return 0;
    return 1;
}

/* ---- the socket exchange ----------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until `fd` is ready for `events` or the deadline passes. 0 ready, -1 with errno set
 * (ETIMEDOUT when the deadline passed: unix sockets never report ETIMEDOUT themselves, so
 * `ask` reads it as "timed out", Python's socket.timeout). */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 0; /* ready, or an error/hang-up that the next call reports */
    }
}

/* Connect the non-blocking socket `fd` to `path`. 0, or -1 with errno set; -2 when the path
 * does not fit in sun_path (Python reports that as "AF_UNIX path too long"). */
static int connect_to(int fd, const char *path, long long deadline)
{
    struct sockaddr_un addr;
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return -2;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len);
    socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (connect(fd, (struct sockaddr *)&addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -1; /* a full backlog is EAGAIN here, and is an error, as in Python */
    if (wait_for(fd, POLLOUT, deadline) != 0)
        return -1;
    int err = 0;
    socklen_t errlen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static int send_all(int fd, const char *data, size_t len, long long deadline)
{
    while (len > 0) {
        if (wait_for(fd, POLLOUT, deadline) != 0)
            return -1;
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read the answer to EOF; bytes past MAX_ANSWER are not read. */
static int recv_answer(int fd, struct buffer *answer, long long deadline)
{
    answer->len = 0;
    answer->data = malloc(MAX_ANSWER);
    if (!answer->data)
        return -1;
    while (answer->len < MAX_ANSWER) {
        if (wait_for(fd, POLLIN, deadline) != 0)
            return -1;
        ssize_t n = recv(fd, answer->data + answer->len, MAX_ANSWER - answer->len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        answer->len += (size_t)n;
    }
    return 0;
}

/* Send the state to the enforcer, read its whole answer. 0, or -1 with `error` set to what
 * Python's str(OSError) would say. */
static int ask(const struct options *opts, const struct buffer *state, struct buffer *answer,
               char *error, size_t size)
{
    long long deadline = now_ms() + (long long)(opts->timeout * 1000.0 + 0.999);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect_to(fd, opts->socket, deadline);
    if (rc == 0)
        rc = send_all(fd, state->data, state->len, deadline);
    if (rc == 0 && shutdown(fd, SHUT_WR) != 0)
        rc = -1;
    if (rc == 0)
        rc = recv_answer(fd, answer, deadline);
    int saved = errno;
    if (rc == -2)
        snprintf(error, size, "AF_UNIX path too long");
    else if (rc != 0 && saved == ETIMEDOUT)
        snprintf(error, size, "timed out");
    else if (rc != 0)
        snprintf(error, size, "[Errno %d] %s", saved, strerror(saved));
    if (fd >= 0)
        close(fd);
    return rc == 0 ? 0 : -1;
}

/* ---- the verdict ------------------------------------------------------------------------- */

/* Python's repr() of a bytes value, e.g. b'maybe' or b"it's", into `out` (NUL-terminated). */
static void bytes_repr(const char *data, size_t len, char *out, size_t size)
{
    char quote = '\'';
    if (memchr(data, '\'', len) && !memchr(data, '"', len))
        quote = '"';
    size_t o = 0;
    /* the longest item is 4 bytes (\xhh), plus the closing quote and NUL */
    if (size < 4 + 2 + 2)
        return;
    out[o++] = 'b';
    out[o++] = quote;
    for (size_t i = 0; i < len && o + 4 + 2 <= size; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == (unsigned char)quote || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            out[o++] = '\\';
            out[o++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (c < ' ' || c >= 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = quote;
    out[o] = '\0';
}

/* The answer's first line is the verdict; the rest goes to stderr when it says anything. */
static int verdict(const struct options *opts, const char *state_dir, const struct buffer *answer)
{
    const char *newline = memchr(answer->data, '\n', answer->len);
    size_t vlen = newline ? (size_t)(newline - answer->data) : answer->len;
    if (newline) {
        const char *text = newline + 1;
        size_t tlen = answer->len - vlen - 1;
        if (!all_space(text, tlen)) {
            say(text, tlen);
            if (text[tlen - 1] != '\n')
                say_str("\n");
        }
    }
    if (vlen == 5 && memcmp(answer->data, "allow", 5) == 0)
        return EXIT_ALLOW;
    if (vlen == 4 && memcmp(answer->data, "deny", 4) == 0)
        return EXIT_DENY;
    char shown[VERDICT_SHOWN * 4 + 8];
    bytes_repr(answer->data, vlen < VERDICT_SHOWN ? vlen : VERDICT_SHOWN, shown, sizeof shown);
    struct message reason = {{"enforcer at ", opts->socket, " answered ", shown}};
    return undecided(&reason, state_dir);
}

int main(int argc, char **argv)
{
    struct options opts;
    struct message reason;
    char error[ERROR_SIZE];
    /* A closed stderr must not kill the hook half-way; send() uses MSG_NOSIGNAL as well. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &opts, &reason) != 0) {
        say_str("tidegate hook: ");
        say_message(&reason);
        say_str("\n");
        return EXIT_USAGE;
    }
    char *state_dir = opts.state_dir ? strdup(opts.state_dir) : dirname_of(opts.socket);
    if (!state_dir) {
        say_str("tidegate hook: out of memory\n");
        return EXIT_DENY;
    }
    struct buffer state = {NULL, 0}, answer = {NULL, 0};
    int code;
    if (read_state(&state) != 0) {
        int saved = errno;
        snprintf(error, sizeof error, "[Errno %d] %s", saved, strerror(saved));
        reason = (struct message){{"cannot read the container state on stdin: ", error, NULL, NULL}};
        code = undecided(&reason, state_dir);
    } else if (all_space(state.data, state.len) || state.len > MAX_STATE) {
        reason = (struct message){{"no container state on stdin (or more than 1 MiB)", NULL, NULL, NULL}};
        code = undecided(&reason, state_dir);
    } else if (ask(&opts, &state, &answer, error, sizeof error) != 0) {
        reason = (struct message){{"enforcer at ", opts.socket, " cannot be asked: ", error}};
        code = undecided(&reason, state_dir);
    } else {
        code = verdict(&opts, state_dir, &answer);
    }
    free(state.data);
    free(answer.data);
    free(state_dir);
    return code;
}
