// Command testapp is the node bed's application image: a workload that
// consumes Secrets the way users' apps do (environment variables and mounted
// files) and shows what it got over HTTP, so a test can tell which value a
// running pod really sees after a sync or a rollout.
//
//	GET /healthz  "ok" (the readiness probe)
//	GET /env      the process environment as a JSON object
//	GET /files    every regular file under $FILES_DIR (default /etc/testapp),
//	              as a JSON object of relative path to content
//	GET /probe    the API server's answer through the in-cluster route
//	              (KUBERNETES_SERVICE_HOST and the mounted token), as text
//
// It listens on $PORT (default 8080).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	port := envOr("PORT", "8080")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, environ()) })
	mux.HandleFunc("/files", func(w http.ResponseWriter, _ *http.Request) {
		files, err := readFiles(envOr("FILES_DIR", "/etc/testapp"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, files)
	})
	mux.HandleFunc("/probe", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, probeAPIServer()) })
	log.Printf("testapp listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, mux))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// readFiles follows symlinks, since Secret volumes are symlinks into a
// timestamped directory that the kubelet swaps on update.
func readFiles(root string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), "..") {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[rel] = string(data)
		return nil
	})
	if os.IsNotExist(err) {
		return files, nil
	}
	return files, err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// probeAPIServer shows that the `kubernetes` Service routes to the API
// server from inside the pod and that the mounted token is accepted.
func probeAPIServer() string {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" {
		return "no KUBERNETES_SERVICE_HOST"
	}
	token, err := os.ReadFile(serviceAccountDir + "token")
	if err != nil {
		return "no service account token: " + err.Error()
	}
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(serviceAccountDir + "ca.crt"); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(host, port)+"/version", nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return fmt.Sprintf("%s via %s: %s", resp.Status, net.JoinHostPort(host, port), strings.Join(strings.Fields(string(body)), " "))
}
