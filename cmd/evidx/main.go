// Command evidx is a forensic ingestion pipeline for seized media: it hashes
// and walks disk images read-only, carves deleted space, and counts and
// indexes the leaked identity datasets it finds.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps an error to the CLI contract: 0 ok, 2 bad usage, 1 failure.
// Only main exits; every command returns its error.
func exitCode(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "evidx: "+oneLine(err.Error()))
	}
	return exitStatus(err)
}

// exitStatus is the exit code for err, without printing it.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "evidx",
		Short:         "Forensic ingestion of seized media and leaked identity datasets",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       toolVersion(),
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// --cpuprofile PATH (hidden, any command): a CPU profile for benchmarking.
	var profile string
	var profileFile *os.File
	root.PersistentFlags().StringVar(&profile, "cpuprofile", "", "write a CPU profile to `PATH`")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	// --examiner NAME (any command): the examiner acting, named in every
	// audit line beside the OS account; the case's examiner by default.
	var examiner string
	root.PersistentFlags().StringVar(&examiner, "examiner", "", "examiner acting, recorded in the audit log (default: the case's examiner)")
	// --sign-key KEYFILE (any command on a case): the examiner's key, which
	// a case created with 'case init --sign-key' needs to write its audit log.
	root.PersistentFlags().StringVar(&signKeyFlag, "sign-key", "", "examiner's ed25519 key `FILE` of a signed case (default $"+custody.EnvSignKey+")")
	// --tz ZONE: the zone of local times file systems store (FAT), as
	// fls -z takes it; without it they are read as UTC and that is said.
	root.PersistentFlags().StringVar(&tzFlag, "tz", "", "time `ZONE` of the local times FAT stores, and exFAT where an entry has no UTC offset (e.g. Asia/Shanghai; default: read as UTC)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		custody.SetActingExaminer(examiner)
		if _, err := zone(); err != nil {
			return usageError{err}
		}
		if profile == "" {
			return nil
		}
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		profileFile = f
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if profileFile != nil {
			pprof.StopCPUProfile()
			profileFile.Close()
		}
	}
	root.AddCommand(
		newHashCmd(),
		newLsCmd(),
		newCatCmd(),
		newTimelineCmd(),
		newCarveCmd(),
		newScanCmd(),
		newCountCmd(),
		newCaseCmd(),
		newEvidenceCmd(),
		newDatasetCmd(),
		newHashsetCmd(),
		newStatsCmd(),
		newServeCmd(),
		newSearchCmd(),
		newLinkCmd(),
		newSourceCmd(),
		newReportCmd(),
		newVerifyCmd(),
		newExportCmd(),
		newCustodyCmd(),
	)
	return root
}
