package scan

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/evidx/evidx/ingest/identity"
)

// Run describes one scan for its DFXML report.
type Run struct {
	Image       string
	Size        int64
	Program     string // "evidx"
	Version     string
	CommandLine string
	Start       time.Time
	Elapsed     time.Duration
	Counts      map[identity.Kind]int
}

// ReportName is the scan report's file, as bulk_extractor names it.
const ReportName = "report.xml"

// WriteReport writes dir/report.xml: a DFXML document (valid against the
// DFXML 2 schema) with the creator, its execution environment and command
// line, the image scanned, getrusage of the process, and, in
// bulk_extractor's namespace, the image size, elapsed time and each
// feature file with its count, as bulk_extractor's own report.xml has.
func WriteReport(dir string, run Run) (string, error) {
	var b bytes.Buffer
	t := func(tag, text string) {
		b.WriteString("<" + tag + ">")
		xml.EscapeText(&b, []byte(text))
		b.WriteString("</" + tag + ">")
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<dfxml xmlns="http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:be="http://afflib.org/bulk_extractor/" version="2.0.0-beta.0">` + "\n")
	b.WriteString("<metadata>")
	t("dc:type", "Feature Extraction")
	b.WriteString("</metadata>\n<creator>")
	t("program", run.Program)
	t("version", run.Version)
	b.WriteString("<execution_environment>")
	t("os_sysname", runtime.GOOS)
	if h, err := os.Hostname(); err == nil {
		t("host", h)
	}
	t("arch", runtime.GOARCH)
	t("command_line", run.CommandLine)
	t("uid", strconv.Itoa(os.Getuid()))
	t("start_time", run.Start.UTC().Format(time.RFC3339))
	b.WriteString("</execution_environment></creator>\n<source>")
	t("image_filename", run.Image)
	b.WriteString("</source>\n")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		sec := func(tv syscall.Timeval) string {
			return strconv.FormatFloat(float64(tv.Sec)+float64(tv.Usec)/1e6, 'f', 6, 64)
		}
		b.WriteString("<rusage>")
		t("utime", sec(ru.Utime))
		t("stime", sec(ru.Stime))
		t("maxrss", strconv.FormatInt(int64(ru.Maxrss), 10))
		t("minflt", strconv.FormatInt(int64(ru.Minflt), 10))
		t("majflt", strconv.FormatInt(int64(ru.Majflt), 10))
		t("nswap", strconv.FormatInt(int64(ru.Nswap), 10))
		t("inblock", strconv.FormatInt(int64(ru.Inblock), 10))
		t("oublock", strconv.FormatInt(int64(ru.Oublock), 10))
		t("clocktime", strconv.FormatFloat(run.Elapsed.Seconds(), 'f', 6, 64))
		b.WriteString("</rusage>\n")
	}
	b.WriteString("<be:report>")
	t("be:image_size", strconv.FormatInt(run.Size, 10))
	t("be:elapsed_seconds", strconv.FormatFloat(run.Elapsed.Seconds(), 'f', 3, 64))
	b.WriteString("<be:feature_files>")
	for _, k := range identity.Kinds() {
		b.WriteString("<be:feature_file>")
		t("be:name", FeatureFile(k))
		t("be:count", strconv.Itoa(run.Counts[k]))
		b.WriteString("</be:feature_file>")
	}
	b.WriteString("</be:feature_files></be:report>\n</dfxml>\n")
	p := filepath.Join(dir, ReportName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", fmt.Errorf("scan: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return "", fmt.Errorf("scan: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("scan: %w", err)
	}
	return p, nil
}

// CheckOutDir refuses an output directory that exists and is not empty,
// as bulk_extractor does: a second run would mix its features with the
// first's. overwrite allows it.
func CheckOutDir(dir string, overwrite bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 || overwrite {
		return nil
	}
	return fmt.Errorf("scan: output directory %s is not empty (give --overwrite to write into it)", dir)
}
