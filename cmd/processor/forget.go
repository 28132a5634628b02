package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/prechat/prechat/mapping"
)

// forgetCmd runs "processor forget --user-id ID | --anonymous-id ID [--lift]".
func forgetCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var userID, anonID string
	var lift bool
	cfg, rest, err := loadConfig("forget", args, environ, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&userID, "user-id", "", "forget this userId and every id linked to it")
		fs.StringVar(&anonID, "anonymous-id", "", "forget this anonymousId and every id linked to it")
		fs.BoolVar(&lift, "lift", false, "lift the suppression recorded when the id was forgotten")
	})
	if err != nil {
		return usageError{err}
	}
	if len(rest) > 0 || (userID == "") == (anonID == "") {
		return usageError{errors.New("usage: processor forget --user-id ID | --anonymous-id ID [--lift]")}
	}
	d, err := openDeps(ctx, cfg, needDB)
	if err != nil {
		return err
	}
	defer d.close()
	store := d.store
	kind, id := mapping.KindUser, userID
	if anonID != "" {
		kind, id = mapping.KindAnonymous, anonID
	}
	if lift {
		lifted, err := store.Lift(ctx, id)
		if err != nil {
			return err
		}
		if len(lifted) == 0 {
			return fmt.Errorf("%s is not suppressed", id)
		}
		fmt.Fprintf(stdout, "lifted the suppression of %d id(s): %s\nlater events naming them are applied again\n", len(lifted), strings.Join(lifted, ", "))
		return nil
	}
	rep, err := store.Forget(ctx, kind, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "forgot %s %s\n", kind, id)
	fmt.Fprintf(stdout, "  anonymousIds: %s\n  userIds:      %s\n", list(rep.AnonymousIDs), list(rep.UserIDs))
	for _, t := range []string{"traits", "identity_links", "group_memberships", "conversations", "prechat_documents", "applied_messages"} {
		fmt.Fprintf(stdout, "  deleted %6d rows from %s\n", rep.Deleted[t], t)
	}
	fmt.Fprintf(stdout, "later events naming these ids are dropped (counted in suppressions.dropped) until: processor forget --%s %s --lift\n",
		map[mapping.Kind]string{mapping.KindUser: "user-id", mapping.KindAnonymous: "anonymous-id"}[kind], id)
	return nil
}

func list(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}
