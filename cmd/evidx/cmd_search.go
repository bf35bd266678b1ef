package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this verb): replace this placeholder with the real command.
func newSearchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "search",
		Short: "not implemented yet",
		RunE: func(cmd *cobra.Command, a []string) error {
			return errors.New("search: not implemented yet")
		},
	}
}
