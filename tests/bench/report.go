package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// printReport prints the table and the ratios the README quotes.
func printReport(b *bed, rows []Row) {
	load, _ := os.ReadFile("/proc/loadavg")
	title := fmt.Sprintf("esosync bench, N=%d ExternalSecrets over M=%d Vault keys, %s, %d CPUs, load average %s",
		b.cfg.n, b.cfg.m, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println()
	PrintTable(os.Stdout, title, rows)
	fmt.Println()
	fmt.Println("ratios:")
	find := func(name string) (Row, bool) {
		for _, r := range rows {
			if r.Name == name {
				return r, true
			}
		}
		return Row{}, false
	}
	anchor, okAnchor := find("anchor-default up")
	for _, name := range []string{"set-provider up", "set-controller up", "items-provider up", "items-controller up", "anchor-tuned up"} {
		if r, ok := find(name); ok && okAnchor && r.Current > 0 {
			fmt.Printf("  time to current, anchor (ESO defaults) / %-20s %s  (%.1f s vs %.1f s)\n", name+":",
				Ratio(anchor.Current, r.Current), anchor.Current.Seconds(), r.Current.Seconds())
		}
	}
	floor, okFloor := find("floor objects")
	floorSecrets, okSecrets := find("floor secrets")
	for _, form := range []string{"items", "set"} {
		if busy := b.providerBusy[form]; busy > 0 && okFloor {
			fmt.Printf("  esosync provider up (%s), engine excluded (busy %.1f s) / floor objects (%.1f s): %s\n",
				form, busy.Seconds(), floor.Wall.Seconds(), Ratio(busy, floor.Wall))
		}
	}
	if r, ok := find("direct up"); ok && okFloor {
		fmt.Printf("  esosync provider up (items), engine excluded (driven directly, %.1f s) / floor objects (%.1f s): %s\n",
			r.Wall.Seconds(), floor.Wall.Seconds(), Ratio(r.Wall, floor.Wall))
	}
	for _, name := range []string{"set-provider up", "items-provider up"} {
		r, ok := find(name)
		if !ok {
			continue
		}
		if okFloor {
			fmt.Printf("  %-20s / floor objects: %s (%.1f s vs %.1f s)\n", name, Ratio(r.Wall, floor.Wall), r.Wall.Seconds(), floor.Wall.Seconds())
		}
		if okSecrets {
			fmt.Printf("  %-20s / floor secrets: %s\n", name, Ratio(r.Wall, floorSecrets.Wall))
		}
	}
	for _, r := range rows {
		if calls := r.API.Total(ClientEsosync); calls > 0 {
			fmt.Printf("  API calls per item by esosync, %-26s %.2f (%d)\n", r.Name+":", float64(calls)/float64(b.cfg.n), calls)
		}
	}
	for _, r := range rows {
		if reads, ok := r.Backend["vault.read"]; ok && reads > 0 {
			fmt.Printf("  Vault reads, %-26s %d (M = %d)\n", r.Name+":", reads, b.cfg.m)
		}
		if r.Note != "" && strings.Contains(r.Note, "BatchGetSecretValue") {
			fmt.Printf("  AWS, %-26s %s\n", r.Name+":", r.Note)
		}
	}
	for _, r := range rows {
		if rss := r.PeakRSS[GroupEsosync]; rss > 0 {
			fmt.Printf("  esosync provider peak RSS, %-26s %.0f MiB (anonymous memory: %.0f MiB at its sampled peak)\n",
				r.Name+":", float64(rss)/(1<<20), float64(r.PeakAnon[GroupEsosync])/(1<<20))
		}
	}
}
