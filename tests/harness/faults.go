package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"time"
)

// Fault injection on a running test bed: stop a server by PID and start it
// again with the same binary, arguments, environment and log; seal Vault
// and unseal it. tests/node's fault table uses these.

// StopProcess stops the named test-bed process by PID (SIGTERM, then
// SIGKILL after a grace period) and keeps it in the bed's list, so that
// StartAgain can start it again and Stop still accounts for it.
func (e *Env) StopProcess(name string) error {
	p := e.processByName(name)
	if p == nil {
		return fmt.Errorf("harness: the test bed runs no %s", name)
	}
	err := p.stop(15 * time.Second)
	if !p.Exited() {
		return err
	}
	if err != nil {
		e.logf("%v", err)
	}
	e.logf("stopped %s (pid %d) by PID", name, p.PID)
	return nil
}

// StartAgain starts the named process, stopped by StopProcess, again with
// the binary, arguments and environment of its last run; its output goes
// on into the same log. The new Process replaces the old one in the bed's
// list. The caller waits for it to be ready.
func (e *Env) StartAgain(name string) (*Process, error) {
	i := slices.IndexFunc(e.processes, func(p *Process) bool { return p.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("harness: the test bed runs no %s", name)
	}
	old := e.processes[i]
	if !old.Exited() {
		return nil, fmt.Errorf("harness: %s (pid %d) is still running", name, old.PID)
	}
	p, err := startProcess(old.Name, old.cmd.Path, old.cmd.Args[1:], old.cmd.Env, old.Log)
	if err != nil {
		return nil, err
	}
	e.processes[i] = p
	e.logf("started %s again (pid %d, log %s)", name, p.PID, p.Log)
	return p, nil
}

// RestartAPIServer stops kube-apiserver by PID, starts it again with the
// same flags (same address, certificates and etcd) and waits until /readyz
// answers. It returns how long the API server was gone.
func (e *Env) RestartAPIServer(ctx context.Context) (time.Duration, error) {
	began := time.Now()
	if err := e.StopProcess("kube-apiserver"); err != nil {
		return 0, err
	}
	p, err := e.StartAgain("kube-apiserver")
	if err != nil {
		return 0, err
	}
	if err := e.waitAPIServer(ctx, p, e.CACertPEM, e.AdminToken); err != nil {
		return 0, err
	}
	gone := time.Since(began)
	e.logf("kube-apiserver ready again after %s", gone.Round(10*time.Millisecond))
	return gone, nil
}

// StopMoto stops moto by PID. moto keeps everything in memory, so what it
// held is gone: see StartMoto.
func (e *Env) StopMoto() error { return e.StopProcess("moto") }

// StartMoto starts moto, stopped by StopMoto, again on the same port (so
// AWSEndpoint, the front before it, stays the same), creates the admin user
// anew and turns IAM auth on again. moto starts empty: the admin user gets
// new keys, which replace AWSAccessKeyID and AWSSecretAccessKey, and every
// secret must be seeded again.
func (e *Env) StartMoto(ctx context.Context) error {
	p, err := e.StartAgain("moto")
	if err != nil {
		return err
	}
	motoURL := "http://" + argAfter(p.cmd.Args, "-H") + ":" + argAfter(p.cmd.Args, "-p")
	if err := waitMoto(ctx, p, motoURL); err != nil {
		return err
	}
	// Auth is off again (INITIAL_NO_AUTH_ACTION_COUNT=inf): any key works
	// until the admin user exists.
	id, secret, err := createAWSUser(ctx, e.awsConfig("AKIAESOSYNCBOOTSTRAP", "bootstrap"), "esosync-admin", awsAdminPolicy)
	if err != nil {
		return fmt.Errorf("harness: creating moto's admin user again: %w", err)
	}
	e.AWSAccessKeyID, e.AWSSecretAccessKey = id, secret
	if err := motoResetAuth(ctx, &http.Client{Timeout: 2 * time.Second}, motoURL, "0"); err != nil {
		return err
	}
	e.logf("moto ready again at %s with IAM auth and a new admin key", e.AWSEndpoint)
	return nil
}

// argAfter is the argument that follows flag in args ("" if none).
func argAfter(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// unsealKeyLine is the line in which the Vault dev server prints its
// unseal key at start.
var unsealKeyLine = regexp.MustCompile(`Unseal Key: ([A-Za-z0-9+/=]+)`)

// VaultUnsealKey is the unseal key the Vault dev server printed into its
// log at start.
func (e *Env) VaultUnsealKey() (string, error) {
	p := e.processByName("vault")
	if p == nil {
		return "", errors.New("harness: the test bed runs no Vault (Options.Vault)")
	}
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return "", err
	}
	m := unsealKeyLine.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("harness: no unseal key in Vault's log %s", p.Log)
	}
	return string(m[1]), nil
}

// SealVault seals Vault with the root token: every request but the
// sys/ health and unseal ones fails with 503 until UnsealVault. Vault's
// data, tokens and auth methods stay.
func (e *Env) SealVault(ctx context.Context) error {
	c, err := e.VaultClient()
	if err != nil {
		return err
	}
	if err := c.Sys().SealWithContext(ctx); err != nil {
		return fmt.Errorf("harness: sealing Vault: %w", err)
	}
	e.logf("vault sealed")
	return nil
}

// UnsealVault unseals Vault with the dev server's unseal key and waits
// until sys/health reports it unsealed and active.
func (e *Env) UnsealVault(ctx context.Context) error {
	key, err := e.VaultUnsealKey()
	if err != nil {
		return err
	}
	c, err := e.VaultClient()
	if err != nil {
		return err
	}
	status, err := c.Sys().UnsealWithContext(ctx, key)
	if err != nil {
		return fmt.Errorf("harness: unsealing Vault: %w", err)
	}
	if status.Sealed {
		return fmt.Errorf("harness: Vault is still sealed after the unseal key (progress %d of %d)", status.Progress, status.T)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, e.processByName("vault"), 30*time.Second, func() error {
		return httpGetOK(client, e.VaultAddr+"/v1/sys/health", "")
	}); err != nil {
		return err
	}
	e.logf("vault unsealed")
	return nil
}
