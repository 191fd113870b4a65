package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/datadir"
)

// resolveConfig reads config.toml in dir (none: the defaults) and lays the
// environment and cmd's config flags over it (datadir.Resolve). A bad flag
// value is a usage error.
func resolveConfig(cmd *cli.Command, dir string) (datadir.FileConfig, datadir.Config, datadir.Sources, error) {
	fc, err := datadir.ReadConfigFile(filepath.Join(dir, datadir.ConfigFile))
	if err != nil {
		return fc, datadir.Config{}, nil, err
	}
	flags := make(map[string]string)
	for _, s := range datadir.Settings() {
		if s.Flag == "" || !cmd.IsSet(s.Flag) {
			continue
		}
		if s.Adds {
			flags[s.Flag] = strings.Join(cmd.StringSlice(s.Flag), ",")
		} else {
			flags[s.Flag] = cmd.String(s.Flag)
		}
	}
	c, src, err := datadir.Resolve(fc, os.Getenv, flags)
	if errors.Is(err, datadir.ErrBadFlag) {
		return fc, c, src, usageError{verb: cmd.FullName(), msg: err.Error()}
	}
	return fc, c, src, err
}

// configView is what `config show --json` prints.
type configView struct {
	File       string        `json:"file"`       // the config file's path
	FileExists bool          `json:"fileExists"` // false: the defaults stand for it
	Settings   []settingView `json:"settings"`
}

// settingView is one setting of configView.
type settingView struct {
	Key    string         `json:"key"`    // as in config.toml: "network.port"
	Value  any            `json:"value"`  // a number, a boolean, a string or a list of strings
	Source datadir.Source `json:"source"` // default, file, env or flag
	Env    string         `json:"env"`    // its environment variable
	Flag   string         `json:"flag,omitempty"`
}

func cmdConfigShow(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	dir, err := dataDir(cmd)
	if err != nil {
		return err
	}
	fc, c, src, err := resolveConfig(cmd, dir)
	if err != nil {
		return err
	}
	v := configView{File: fc.Path, FileExists: fc.Exists}
	for _, s := range datadir.Settings() {
		sv := settingView{Key: s.Key, Value: s.Value(c), Source: src[s.Key], Env: s.Env}
		if s.Flag != "" {
			sv.Flag = "--" + s.Flag
		}
		v.Settings = append(v.Settings, sv)
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, v)
	}
	if fc.Exists {
		fmt.Fprintf(out, "config file %s\n\n", fc.Path)
	} else {
		fmt.Fprintf(out, "config file %s (none yet: the defaults)\n\n", fc.Path)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, s := range v.Settings {
		from := string(s.Source)
		switch s.Source {
		case datadir.SourceEnv:
			from += " " + s.Env
		case datadir.SourceFlag:
			from += " " + s.Flag
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, showValue(s.Value), from)
	}
	return tw.Flush()
}

// showValue prints a setting's value as config.toml would.
func showValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v)
}
