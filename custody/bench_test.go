package custody

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkBatchAddFile measures catalog rows per second for file rows as
// the walker records them (byte runs, hashes, times), committed every
// 20,000 rows.
func BenchmarkBatchAddFile(b *testing.B) {
	ctx := context.Background()
	c, err := Init(ctx, filepath.Join(b.TempDir(), "case"), Meta{CaseNumber: "B", Examiner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.AddEvidence(ctx, &Evidence{ID: "EV1", Format: "raw", Size: 1 << 40, SectorSize: 512}); err != nil {
		b.Fatal(err)
	}
	bt, err := c.NewBatch(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := bt.AddFile(File{EvidenceID: "EV1", Volume: 1, Path: fmt.Sprintf("/dir%d/file%d.txt", i/1000, i), Size: 4096,
			Inode: uint64(i), Mtime: now, Atime: now, Ctime: now, Runs: []Run{{0, int64(i) * 4096, 4096, false}},
			MD5: "0123456789abcdef0123456789abcdef", SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := bt.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkStoreObject measures the content store (copy + MD5/SHA-1/SHA-256
// + rename) for 1 MiB objects of distinct content.
func BenchmarkStoreObject(b *testing.B) {
	ctx := context.Background()
	c, err := Init(ctx, filepath.Join(b.TempDir(), "case"), Meta{CaseNumber: "B", Examiner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		copy(data, fmt.Sprintf("%016d", i))
		if _, err := c.StoreObject(ctx, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAudit measures audit appends (flock, tail read, fsync).
func BenchmarkAudit(b *testing.B) {
	ctx := context.Background()
	c, err := Init(ctx, filepath.Join(b.TempDir(), "case"), Meta{CaseNumber: "B", Examiner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		if err := c.Audit(Entry{Action: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportVerify100k records 100,000 files (1,000 distinct stored
// objects) and measures one report (HTML, JSON, DFXML, manifest, sums) and
// one verify of the case per iteration.
func BenchmarkReportVerify100k(b *testing.B) {
	ctx := context.Background()
	c, err := Init(ctx, filepath.Join(b.TempDir(), "case"), Meta{CaseNumber: "B", Examiner: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.AddEvidence(ctx, &Evidence{ID: "EV1", Format: "raw", Size: 1 << 40, SectorSize: 512}); err != nil {
		b.Fatal(err)
	}
	if err := c.AddVolume(ctx, Volume{EvidenceID: "EV1", Index: 1, Size: 1 << 40, FileSystem: "ntfs"}); err != nil {
		b.Fatal(err)
	}
	bt, err := c.NewBatch(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	var objs []string
	for i := range 1000 {
		s, err := bt.StoreObject(bytes.NewReader([]byte(fmt.Sprintf("object %d %s", i, bytes.Repeat([]byte("x"), 4000)))))
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, s.SHA256)
	}
	now := time.Now()
	const files = 100000
	for i := range files {
		if err := bt.AddFile(File{EvidenceID: "EV1", Volume: 1, Path: fmt.Sprintf("/dir%d/file%d.txt", i/1000, i), Size: 4040,
			Inode: uint64(i), Mtime: now, Runs: []Run{{0, int64(i) * 4096, 4040, false}}, Deleted: i%10 == 0,
			SHA256: objs[i%1000], Object: objs[i%1000]}); err != nil {
			b.Fatal(err)
		}
	}
	if err := bt.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := c.WriteReport(ctx, ReportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "report-s")
		start = time.Now()
		vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true})
		if err != nil || !vr.OK {
			b.Fatal(err, vr.Failures)
		}
		b.ReportMetric(time.Since(start).Seconds(), "verify-s")
	}
	b.ReportMetric(files, "files")
}
