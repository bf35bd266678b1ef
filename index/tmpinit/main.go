package main

import (
	"context"
	"os"
	"strconv"

	"github.com/evidx/evidx/custody"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	c, err := custody.Init(context.Background(), os.Args[1], custody.Meta{CaseNumber: "T", Examiner: "me", Shards: n})
	if err != nil {
		panic(err)
	}
	c.Close()
}
