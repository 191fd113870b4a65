package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestChatInTerminal runs `exopeer chat` (the real binary) on a
// pseudo-terminal between two loopback nodes whose cells are contacts: a
// line typed there reaches the other cell, a message from the other cell
// appears on the terminal, and Ctrl-D ends the chat with exit 0; a second
// chat shows the conversation so far and Ctrl-C ends it with exit 0.
func TestChatInTerminal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("pseudo-terminals are Unix")
	}
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	bin := buildExopeer(t)
	a, b := loopbackDir(t), loopbackDir(t)
	runNode(t, a)
	code, out, errs := run(t, "id", "--dir", a)
	addr := regexp.MustCompile(`(?m)^.*?(/ip4/127\.0\.0\.1/tcp/\S+)$`).FindStringSubmatch(out)
	if code != 0 || addr == nil {
		t.Fatalf("id: exit %d, %q %q", code, out, errs)
	}
	runNode(t, b, "--bootstrap", addr[1])
	mustRun(t, "cell", "create", "Alice", "--dir", a)
	mustRun(t, "cell", "create", "Bob", "--dir", b)
	card := regexp.MustCompile(`(?m)^(exo-card:1:[a-z2-7]+)$`)
	acard := card.FindString(mustRun(t, "contact", "card", "--dir", a))
	bcard := card.FindString(mustRun(t, "contact", "card", "--dir", b))
	mustRun(t, "contact", "add", bcard, "--dir", a)
	mustRun(t, "contact", "add", acard, "--dir", b)

	term := startChat(t, bin, "Bob", "--dir", a)
	term.type_(t, "hello from a terminal\n")
	waitFor(t, 30*time.Second, "Bob's inbox to show the line typed", func() bool {
		return strings.Contains(mustRun(t, "inbox", "--contact", "Alice", "--dir", b), "Alice < hello from a terminal\n")
	})
	waitFor(t, 30*time.Second, "the terminal to show the line delivered", func() bool {
		return strings.Contains(term.out.String(), "  Bob > hello from a terminal\r\n")
	})
	mustRun(t, "send", "Alice", "hello from Bob", "--dir", b)
	waitFor(t, 30*time.Second, "the terminal to show Bob's message", func() bool {
		return strings.Contains(term.out.String(), "  Bob < hello from Bob\r\n")
	})
	term.type_(t, "\x04") // Ctrl-D at the start of a line: EOF
	term.wait(t)

	term = startChat(t, bin, "Bob", "--dir", a)
	waitFor(t, 30*time.Second, "the conversation so far", func() bool {
		return regexp.MustCompile(`  Bob > hello from a terminal\r\n.*  Bob < hello from Bob\r\n`).MatchString(term.out.String())
	})
	term.type_(t, "\x03") // Ctrl-C: SIGINT to the chat
	term.wait(t)
}

// mustRun runs the CLI in-process and returns its stdout; it fails the
// test unless the verb succeeds.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := run(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// chatTerm is `exopeer chat` running on a pseudo-terminal.
type chatTerm struct {
	cmd    *exec.Cmd
	ptmx   *os.File
	out    syncBuffer    // all the terminal shows
	read   chan struct{} // closed when the terminal's output ends
	exited chan error
}

func startChat(t *testing.T, bin string, args ...string) *chatTerm {
	t.Helper()
	c := &chatTerm{cmd: exec.Command(bin, append([]string{"chat"}, args...)...), read: make(chan struct{}), exited: make(chan error, 1)}
	ptmx, err := pty.Start(c.cmd)
	if err != nil {
		t.Fatalf("start chat on a pty: %v", err)
	}
	c.ptmx = ptmx
	go func() {
		defer close(c.read)
		_, _ = io.Copy(&c.out, ptmx) // EIO once the chat has ended
	}()
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
		ptmx.Close()
		<-c.read
	})
	return c
}

// type_ types s on the terminal.
func (c *chatTerm) type_(t *testing.T, s string) {
	t.Helper()
	if _, err := c.ptmx.Write([]byte(s)); err != nil {
		t.Fatalf("type %q: %v", s, err)
	}
}

// wait waits for the chat to end and checks that it exited 0.
func (c *chatTerm) wait(t *testing.T) {
	t.Helper()
	var err error
	select {
	case err = <-c.exited:
		c.exited <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("the chat did not end; the terminal shows:\n%s", c.out.String())
	}
	var ee *exec.ExitError
	if err != nil && errors.As(err, &ee) {
		t.Fatalf("the chat exited %d; the terminal shows:\n%s", ee.ExitCode(), c.out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
}
