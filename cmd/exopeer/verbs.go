package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
)

const description = `Every verb takes --dir DIR (default $EXOPEER_DIR, else the user's data dir),
before or after the verb. Flags may come before or after a verb's arguments;
-- ends the flags (for a TEXT that starts with -). Verbs that read take --json
and then print the control API's JSON.

Exit status: 0 ok, 1 failure, 2 usage error (unknown verb or flag, missing or
extra argument, bad flag value).`

// app returns the command tree: the one definition of each verb, from which
// the help, the shell completion and the README's verb list come. Flags
// hold their values, so each run gets a new tree.
func app(stdout, stderr io.Writer) *cli.Command {
	root := &cli.Command{
		Name:        "exopeer",
		Usage:       "one peer of a serverless personal cloud and private messenger",
		UsageText:   "exopeer [--dir DIR] VERB [flags] [arguments]",
		Description: description,
		Writer:      stdout,
		ErrWriter:   stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "the data dir", DefaultText: "$EXOPEER_DIR, else the user's data dir",
				Sources: cli.NewValueSourceChain(setEnv("EXOPEER_DIR"))},
			&cli.BoolFlag{Name: "version", Usage: "print the version", Local: true},
		},
		EnableShellCompletion: true,
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script: bash, zsh, fish or pwsh"
			c.ArgsUsage = "SHELL"
			c.Action = action(group)
			for _, sh := range c.Commands { // completion SHELL: no more arguments
				script := sh.Action
				sh.Action = action(func(ctx context.Context, cmd *cli.Command) error {
					if _, err := args(ctx, cmd, 0, 0); err != nil {
						return err
					}
					return script(ctx, cmd)
				})
			}
		},
		HideHelpCommand: true,
		Action: action(func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Bool("version") {
				if _, err := args(ctx, cmd, 0, 0); err != nil {
					return err
				}
				return printVersion(cmd, false)
			}
			return group(ctx, cmd)
		}),
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // Main maps errors to exit codes
		Commands: []*cli.Command{
			{
				Name:  "run",
				Usage: "start the node (creates the data dir on first run)",
				Description: "The settings are layered: the defaults, then config.toml in the data dir, then\n" +
					"EXOPEER_* variables (EXOPEER_ and the key in capitals, dots as underscores,\n" +
					"without \"network.\": EXOPEER_PORT, EXOPEER_DHT_MODE, EXOPEER_LOG_LEVEL), then\n" +
					"these flags. \"exopeer config show\" prints the result and where each value came from.",
				Flags:  configFlags(),
				Action: action(cmdRun),
			},
			{
				Name:   "init",
				Usage:  "create the data dir, key and config without starting",
				Action: action(cmdInit),
			},
			{
				Name:   "id",
				Usage:  "the running node's peer ID and addresses",
				Flags:  []cli.Flag{jsonFlag()},
				Action: action(cmdID),
			},
			{
				Name:   "status",
				Usage:  "what the running node sees",
				Flags:  []cli.Flag{jsonFlag()},
				Action: action(cmdStatus),
			},
			{
				Name:   "doctor",
				Usage:  "what is wrong with connectivity and the data dir, and what to do",
				Flags:  []cli.Flag{jsonFlag()},
				Action: action(cmdDoctor),
			},
			{
				Name:   "peers",
				Usage:  "the peers it is connected to, how found, round trip",
				Flags:  []cli.Flag{jsonFlag()},
				Action: action(cmdPeers),
			},
			{
				Name:      "connect",
				Usage:     "dial a peer by hand: /ip4/…/udp/4777/quic-v1/p2p/12D3KooW…",
				ArgsUsage: "MULTIADDR",
				Flags:     []cli.Flag{jsonFlag()},
				Action:    action(cmdConnect),
			},
			{
				Name:   "cell",
				Usage:  "the cell: the devices of one owner",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "create",
						Usage:     "make a cell with this node as its admin",
						ArgsUsage: "NAME",
						Flags:     []cli.Flag{memberFlag(), jsonFlag()},
						Action:    action(cmdCellCreate),
					},
					{
						Name:  "invite",
						Usage: "print a one-time code such as 4721-apple-orbit-tunnel for a new node (admin)",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "roles", Value: "chain,store", Usage: "the new member's roles: chain, store, relay, mailbox"},
							&cli.DurationFlag{Name: "ttl", Value: 10 * time.Minute, Usage: "how long the code stays valid (at most 168h)"},
							jsonFlag(),
						},
						Action: action(cmdCellInvite),
					},
					{
						Name:      "join",
						Usage:     "on the new device: join the cell of the node that printed CODE",
						ArgsUsage: "CODE",
						Flags: []cli.Flag{
							memberFlag(),
							&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to look for the inviter"},
							jsonFlag(),
						},
						Action: action(cmdCellJoin),
					},
					{
						Name:   "members",
						Usage:  "the roster and each member's live state",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdCellMembers),
					},
					{
						Name:      "remove",
						Usage:     "remove a member (admin): take its last entries, then rotate the cell secret",
						ArgsUsage: "PEER",
						Flags: []cli.Flag{
							&cli.BoolFlag{Name: "now", Usage: "remove at once (a stolen device): do not first take the entries it holds"},
							jsonFlag(),
						},
						Action: action(cmdCellRemove),
					},
				},
			},
			{
				Name:   "chain",
				Usage:  "the cell's chain: its shared log",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "append",
						Usage:     "append an entry: the words of TEXT, or the bytes of --file F (- for stdin)",
						ArgsUsage: "[TEXT...]",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "file", Usage: "append the bytes of this file (- for stdin) instead of TEXT"},
							jsonFlag(),
						},
						Action: action(cmdChainAppend),
					},
					{
						Name:  "log",
						Usage: "the chain in order, one entry a line: position, author, seq, text",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "after", Usage: "start after this position (as printed by log or append)"},
							&cli.IntFlag{Name: "limit", Usage: "print at most N entries (default: all)", HideDefault: true},
							&cli.BoolFlag{Name: "follow", Usage: "after the log, print new entries as they arrive, until interrupted"},
							&cli.BoolFlag{Name: "json", Usage: "print JSON, one object a line"},
						},
						Action: action(cmdChainLog),
					},
					{
						Name:   "status",
						Usage:  "length, heads, authors, and each member's state and how far behind it is",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdChainStatus),
					},
				},
			},
			{
				Name:   "store",
				Usage:  "the store: entities made of typed traits, on the chain, indexed",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "put",
						Usage:     `write a trait of TYPE with the document JSON (- for stdin): into a new entity, or --entity ID`,
						ArgsUsage: "TYPE JSON",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "entity", Usage: "the entity to write into (default: a new one)"},
							&cli.StringFlag{Name: "trait", Usage: "the trait's ID within the entity (default: its TYPE)"},
							jsonFlag(),
						},
						Action: action(cmdStorePut),
					},
					{
						Name:      "get",
						Usage:     "an entity: each live trait and its document",
						ArgsUsage: "ID",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "traits", Usage: "the trait types to show, comma-separated (default all)"},
							jsonFlag(),
						},
						Action: action(cmdStoreGet),
					},
					{
						Name:      "rm",
						Usage:     "delete an entity, or only its traits --trait T",
						ArgsUsage: "ID",
						Flags: []cli.Flag{
							&cli.StringSliceFlag{Name: "trait", Usage: "a trait ID to delete (repeatable; default: the whole entity)"},
							jsonFlag(),
						},
						Action: action(cmdStoreRm),
					},
					{
						Name:   "query",
						Usage:  "a page of the entities that match, one a line, then the cursor of the next page",
						Flags:  storeQueryFlags(),
						Action: action(cmdStoreQuery),
					},
					{
						Name:   "watch",
						Usage:  "a query's first page, then each change to it (added, changed, removed) as it happens, until interrupted",
						Flags:  storeQueryFlags(),
						Action: action(cmdStoreWatch),
					},
					{
						Name:   "types",
						Usage:  "the registered trait types and their indexed fields",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdStoreTypes),
					},
					{
						Name:   "reindex",
						Usage:  "rebuild the index from the chain (a node with the store role)",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdStoreReindex),
					},
					{
						Name:   "status",
						Usage:  "the store's role, the index's size and how far it is behind the chain",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdStoreStatus),
					},
				},
			},
			{
				Name:   "note",
				Usage:  "notes: the first entity type (exo.note), on the store",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "add",
						Usage:     "add a note: the words of TEXT",
						ArgsUsage: "TEXT...",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "title", Usage: "the note's title"},
							&cli.StringSliceFlag{Name: "tag", Usage: "a tag (repeatable)"},
							jsonFlag(),
						},
						Action: action(cmdNoteAdd),
					},
					{
						Name:  "ls",
						Usage: "the notes, newest first, one a line",
						Flags: []cli.Flag{
							&cli.StringSliceFlag{Name: "tag", Usage: "only notes with this tag (repeatable: all of them)"},
							&cli.IntFlag{Name: "limit", Usage: fmt.Sprintf("at most N notes, 1 to %d (default %d)", store.MaxLimit, store.DefaultLimit), HideDefault: true},
							&cli.StringFlag{Name: "after", Usage: "the cursor of the previous page, to read the next"},
							jsonFlag(),
						},
						Action: action(cmdNoteLs),
					},
					{
						Name:      "search",
						Usage:     "the notes with every word of WORDS in their title or body, best first",
						ArgsUsage: "WORDS...",
						Flags: []cli.Flag{
							&cli.IntFlag{Name: "limit", Usage: fmt.Sprintf("at most N notes, 1 to %d (default %d)", store.MaxLimit, store.DefaultLimit), HideDefault: true},
							&cli.StringFlag{Name: "after", Usage: "the cursor of the previous page, to read the next"},
							jsonFlag(),
						},
						Action: action(cmdNoteSearch),
					},
				},
			},
			{
				Name:   "files",
				Usage:  "the cell's files: encrypted blobs, listed on every device",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "add",
						Usage:     "add files and folders (the node reads them), or stdin (- --name NAME); prints each capability",
						ArgsUsage: "PATH...",
						Flags: []cli.Flag{
							&cli.StringFlag{Name: "name", Usage: "the file's name, for - (stdin)"},
							jsonFlag(),
						},
						Action: action(cmdFilesAdd),
					},
					{
						Name:   "ls",
						Usage:  "the files, newest first: name, size, when and by whom added, what this node holds",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdFilesLs),
					},
					{
						Name:      "get",
						Usage:     "fetch a file or folder from the devices that hold it and write it (default: its name, here)",
						ArgsUsage: "NAME|CAP",
						Flags:     []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the path to write (- for stdout)"}},
						Action:    action(cmdFilesGet),
					},
					{
						Name:      "cat",
						Usage:     "print a file's bytes, or a range of them (only that range is fetched)",
						ArgsUsage: "NAME|CAP",
						Flags: []cli.Flag{
							&cli.Int64Flag{Name: "offset", Usage: "the first byte"},
							&cli.Int64Flag{Name: "length", Usage: "how many bytes (default: to the end)", HideDefault: true},
						},
						Action: action(cmdFilesCat),
					},
					{
						Name:      "rm",
						Usage:     "remove a file from the cell (its blocks go at the next collection, on every device)",
						ArgsUsage: "NAME",
						Flags:     []cli.Flag{jsonFlag()},
						Action:    action(cmdFilesRm),
					},
					{
						Name:      "pin",
						Usage:     "keep a file on this node, whatever the pin policy",
						ArgsUsage: "NAME",
						Flags:     []cli.Flag{jsonFlag()},
						Action:    action(cmdFilesPin),
					},
					{
						Name:      "unpin",
						Usage:     "let a file's blocks go at the next collection (unless the pin policy keeps them)",
						ArgsUsage: "NAME",
						Flags:     []cli.Flag{jsonFlag()},
						Action:    action(cmdFilesUnpin),
					},
				},
			},
			{
				Name:   "blob",
				Usage:  "raw blobs: content read by capability alone",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:      "add",
						Usage:     "add a file (- for stdin) as a blob pinned on this node; prints its capability",
						ArgsUsage: "PATH|-",
						Flags: []cli.Flag{
							&cli.BoolFlag{Name: "public", Usage: "plain UnixFS, no key: the root CID is Kubo's (ipfs add --cid-version=1 --raw-leaves)"},
							jsonFlag(),
						},
						Action: action(cmdBlobAdd),
					},
					{
						Name:      "get",
						Usage:     "fetch a blob whole from the peers that hold it and write it (default: stdout)",
						ArgsUsage: "CAP",
						Flags:     []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the path to write (a folder's, for a directory)"}},
						Action:    action(cmdBlobGet),
					},
					{
						Name:      "export",
						Usage:     "a blob's blocks as a CAR file (ipfs dag import takes it); a CID is enough; a folder's capability exports its whole tree",
						ArgsUsage: "CAP|CID",
						Flags:     []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the CAR file to write (default: stdout)"}},
						Action:    action(cmdBlobExport),
					},
					{
						Name:   "gc",
						Usage:  "delete the blob blocks no pin keeps",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdBlobGC),
					},
					{
						Name:   "status",
						Usage:  "the pin policy, the blob blocks held, the budgets",
						Flags:  []cli.Flag{jsonFlag()},
						Action: action(cmdBlobStatus),
					},
				},
			},
			{
				Name:     "contact",
				Usage:    "contacts: other cells this cell talks to, and this cell's card",
				Action:   action(group),
				Commands: contactVerbs(),
			},
			sendVerb(),
			shareVerb(),
			inboxVerb(),
			readVerb(),
			chatVerb(),
			{
				Name:   "config",
				Usage:  "the node's configuration",
				Action: action(group),
				Commands: []*cli.Command{
					{
						Name:   "show",
						Usage:  "the effective settings and where each came from: default, file, env or flag (takes run's flags)",
						Flags:  append(configFlags(), jsonFlag()),
						Action: action(cmdConfigShow),
					},
				},
			},
			{
				Name:  "version",
				Usage: "print the version",
				Flags: []cli.Flag{jsonFlag()},
				Action: action(func(ctx context.Context, cmd *cli.Command) error {
					if _, err := args(ctx, cmd, 0, 0); err != nil {
						return err
					}
					return printVersion(cmd, cmd.Bool("json"))
				}),
			},
		},
	}
	setUsageErrors(root)
	keepCommas(root)
	return root
}

// keepCommas makes a repeatable flag of the store's and the notes' verbs
// take its value whole: a comma is part of a value there (--where
// 'tags=milk, eggs', --tag 'a, b'), not a separator of several.
func keepCommas(root *cli.Command) {
	for _, c := range root.Commands {
		if c.Name != "store" && c.Name != "note" {
			continue
		}
		for _, v := range c.Commands {
			v.DisableSliceFlagSeparator = true
		}
	}
}

// setUsageErrors makes the library's parse errors usage errors on every
// verb.
func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	for _, c := range cmd.Commands {
		setUsageErrors(c)
	}
}

// group is the action of a verb that has verbs: with none, or one it does
// not know, it prints its help to stderr and is a usage error.
func group(ctx context.Context, cmd *cli.Command) error {
	a := cmd.Args().Slice()
	what := "verb"
	if cmd.Name != "exopeer" {
		what = cmd.Name + " verb"
	}
	if len(a) > 0 && a[0] == "help" && cmd.Root() == cmd {
		// exopeer help [VERB]: as --help.
		if len(a) > 2 {
			return usageError{verb: cmd.FullName(), msg: fmt.Sprintf("help takes one verb, got %q too", a[2]), hint: true}
		}
		if len(a) > 1 {
			if err := cli.ShowCommandHelp(ctx, cmd, a[1]); err != nil {
				return usageError{verb: cmd.FullName(), msg: fmt.Sprintf("unknown verb %q", a[1]), hint: true}
			}
			return nil
		}
		return cli.ShowRootCommandHelp(cmd)
	}
	if len(a) > 0 {
		return usageError{verb: cmd.FullName(), msg: fmt.Sprintf("unknown %s %q", what, a[0]), hint: true}
	}
	// The help, on stderr: it answers a usage error.
	cmd.Writer = stderr(cmd)
	cmd.Root().Writer = stderr(cmd)
	if cmd.Root() == cmd {
		_ = cli.ShowRootCommandHelp(cmd)
	} else {
		_ = cli.ShowSubcommandHelp(cmd)
	}
	return usageError{verb: cmd.FullName(), msg: "want a " + what}
}

func jsonFlag() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print JSON (the control API's)"} }
func memberFlag() cli.Flag {
	return &cli.StringFlag{Name: "member", Usage: "this node's name on the roster (default: the host name)"}
}

// configUsage is the help of each config flag, by name.
var configUsage = map[string]string{
	"port":      "TCP and QUIC port (default: config, else 4777; -1: any free port)",
	"bootstrap": "a peer to dial and keep connected, as a multiaddr ending in /p2p/<peer ID> (repeatable; adds to the config's)",
	"mdns":      `"true" or "false": find peers on the LAN by multicast DNS (default: config, else true)`,
	"dht-mode":  "auto, server or client (default: config, else auto)",
	"dht-lan":   `"true" or "false": run the LAN DHT table (default: config, else true)`,
	"api":       "loopback IP:port of the control API (default: config, else 127.0.0.1:0)",
	"log-level": "debug, info, warn or error (default: config, else info)",
}

// configFlags returns the flags of the layered settings that have one
// (datadir.Settings), as run and config show take them. Their values are
// strings: datadir.Resolve parses them, after the environment.
func configFlags() []cli.Flag {
	var fs []cli.Flag
	for _, s := range datadir.Settings() {
		switch {
		case s.Flag == "":
		case s.Adds:
			fs = append(fs, &cli.StringSliceFlag{Name: s.Flag, Usage: configUsage[s.Flag] + " [$" + s.Env + "]"})
		default:
			fs = append(fs, &cli.StringFlag{Name: s.Flag, Usage: configUsage[s.Flag] + " [$" + s.Env + "]"})
		}
	}
	return fs
}

// versionInfo is what `version --json` prints.
type versionInfo struct {
	Version string `json:"version"`
}

func printVersion(cmd *cli.Command, asJSON bool) error {
	if asJSON {
		return printJSON(stdout(cmd), versionInfo{peer.Version})
	}
	_, err := fmt.Fprintln(stdout(cmd), "exopeer", peer.Version)
	return err
}
