package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this verb): replace this placeholder with the real command.
func newCaseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "case",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, a []string) error {
			return errors.New("case: not implemented yet")
		},
	}
}
