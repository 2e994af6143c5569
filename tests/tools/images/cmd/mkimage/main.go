// Command mkimage writes a one-layer linux/amd64 container image as a
// docker-archive tarball (the layout of `docker save`: manifest.json, the
// image config, one uncompressed layer), which `ctr images import` loads
// into containerd. The node bed has no registry and no Docker, so every
// image it runs is made this way from files on the machine.
//
//	mkimage -o pause.tar -tag esosync.local/pause:3.10 \
//	    -file ./pause:/pause:0755 -entrypoint /pause -user 65535:65535
//
// The archive is byte-reproducible: fixed timestamps and owners, entries in
// the order given.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// multi collects a repeatable flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// spec is what goes into the image.
type spec struct {
	tags, files, dirs, env multi
	entrypoint, user       string
}

// epoch is every timestamp in the archive, so equal inputs give equal bytes.
var epoch = time.Unix(0, 0).UTC()

func main() {
	var s spec
	out := flag.String("o", "", "the docker-archive tarball to write")
	flag.Var(&s.tags, "tag", "an image reference, e.g. esosync.local/pause:3.10 (repeatable)")
	flag.Var(&s.files, "file", "SRC:DST[:MODE]: a host file copied into the image (repeatable)")
	flag.Var(&s.dirs, "dir", "DST[:MODE]: an empty directory (repeatable)")
	flag.Var(&s.env, "env", "KEY=VALUE in the image's environment (repeatable)")
	flag.StringVar(&s.entrypoint, "entrypoint", "", "the entrypoint, argv comma-separated")
	flag.StringVar(&s.user, "user", "", "the user to run as, e.g. 65534 or 65534:65534")
	flag.Parse()
	if err := run(s, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(s spec, out string) error {
	if len(s.tags) == 0 || out == "" {
		return fmt.Errorf("-tag and -o are required")
	}
	layer, err := buildLayer(s)
	if err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer)
	config, err := imageConfig(s, "sha256:"+hex.EncodeToString(layerSum[:]))
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := hex.EncodeToString(layerSum[:]) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string(s.tags), "Layers": []string{layerName}}})
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer}, {"manifest.json", manifest}} {
		if err := writeFile(tw, e.name, 0o644, e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, archive.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("mkimage: %s -> %s (%d bytes)\n", strings.Join(s.tags, " "), out, archive.Len())
	return nil
}

// buildLayer is the image's one filesystem layer: the directories, then the
// files, each with its parents.
func buildLayer(s spec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	made := map[string]bool{}
	for _, d := range s.dirs {
		dst, mode, err := splitMode(d, 0o755)
		if err != nil {
			return nil, err
		}
		if err := mkdirAll(tw, made, dst, mode); err != nil {
			return nil, err
		}
	}
	for _, f := range s.files {
		src, rest, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("-file %q: want SRC:DST[:MODE]", f)
		}
		dst, mode, err := splitMode(rest, 0o644)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+dst), "/")
		if err := mkdirAll(tw, made, path.Dir(name), 0o755); err != nil {
			return nil, err
		}
		if err := writeFile(tw, name, mode, data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// splitMode splits "PATH[:MODE]" (MODE in octal).
func splitMode(v string, def int64) (string, int64, error) {
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return v, def, nil
	}
	mode, err := strconv.ParseInt(v[i+1:], 8, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q: mode %q is not octal", v, v[i+1:])
	}
	return v[:i], mode, nil
}

func mkdirAll(tw *tar.Writer, made map[string]bool, dir string, mode int64) error {
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir == "" || made[dir] {
		return nil
	}
	if err := mkdirAll(tw, made, path.Dir(dir), 0o755); err != nil {
		return err
	}
	made[dir] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, ModTime: epoch})
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// imageConfig is the OCI/Docker image config for one layer with diffID.
func imageConfig(s spec, diffID string) ([]byte, error) {
	cfg := map[string]any{
		"Env":        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, s.env...),
		"WorkingDir": "/",
	}
	if s.user != "" {
		cfg["User"] = s.user
	}
	if s.entrypoint != "" {
		cfg["Entrypoint"] = strings.Split(s.entrypoint, ",")
	}
	created := epoch.Format(time.RFC3339)
	return json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      created,
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history":      []map[string]any{{"created": created, "created_by": "esosync mkimage"}},
	})
}
