package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/api/server"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/peer"
)

// Example drives a node from a program: it makes a cell, appends to the
// cell's chain and reads the chain back. The node here runs in-process on
// loopback (runNode, below, does what `exopeer run --dir DIR` does); a
// program driving a node started by `exopeer run` needs only Dial.
func Example() {
	dir, stop, err := runNode()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	c, err := client.Dial(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An error of the node has a kind to branch on.
	_, err = c.ChainAppend(ctx, api.ChainText("too soon"))
	fmt.Println("before a cell:", errors.Is(err, client.ErrNotInCell))
	cell, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cell %q, %d member, admin %v\n", cell.Name, len(cell.Members), cell.Admin)
	for _, s := range []string{"hello", "world"} {
		e, err := c.ChainAppend(ctx, api.ChainText(s))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("appended seq %d\n", e.Seq)
	}
	page, err := c.ChainLog(ctx, "", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Entries {
		fmt.Printf("log: %s\n", e.Payload())
	}
	// Output:
	// before a cell: true
	// cell "home", 1 member, admin true
	// appended seq 1
	// appended seq 2
	// log: hello
	// log: world
}

// Example_store writes entities into a node's store, queries them, and
// watches a query: the first page, then each change as it is written.
func Example_store() {
	dir, stop, err := runNode()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	c, err := client.Dial(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home"}); err != nil {
		log.Fatal(err)
	}
	// A note is an entity with one exo.note trait; its schema says which
	// fields the index keeps, and refuses a document that does not match.
	_, err = c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: []byte(`{"title": "no body"}`)}}})
	fmt.Println("refused:", errors.Is(err, client.ErrBadDocument))
	for _, body := range []string{`{"body": "buy milk", "tags": ["home"]}`, `{"body": "call the bank", "tags": ["work"]}`} {
		if _, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: []byte(body)}}}); err != nil {
			log.Fatal(err)
		}
	}
	page, err := c.StoreQuery(ctx, api.StoreQuery{Type: "exo.note", Where: []api.StorePredicate{{Field: "tags", Op: "=", Value: "home"}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tagged home:", len(page.Hits))

	wctx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	for l, err := range c.StoreWatch(wctx, api.StoreQuery{Match: "milk", Traits: &[]string{}}) {
		if err != nil {
			log.Fatal(err)
		}
		if l.Page != nil {
			fmt.Println("watching, first page:", len(l.Page.Hits))
			if _, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: []byte(`{"body": "more milk"}`)}}}); err != nil {
				log.Fatal(err)
			}
			continue
		}
		fmt.Println("change:", l.Changes[0].Kind)
		break
	}
	// Output:
	// refused: true
	// tagged home: 1
	// watching, first page: 1
	// change: added
}

// runNode starts a node and its control API on a new data dir, on
// loopback with no mDNS, and returns the dir and a function that stops
// them and removes the dir.
func runNode() (dir string, stop func(), err error) {
	dir, err = os.MkdirTemp("", "exopeer-example")
	if err != nil {
		return "", nil, err
	}
	d, err := datadir.OpenDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	off := false
	d.Config.Network.Port, d.Config.Network.ListenIPs, d.Config.Network.MDNS = -1, []string{"127.0.0.1"}, &off
	d.Config.DHT.LAN = &off
	opts, err := peer.NodeOptions(d, nil)
	if err != nil {
		d.Close()
		os.RemoveAll(dir)
		return "", nil, err
	}
	node, err := peer.New(opts)
	if err == nil {
		err = node.Start(context.Background())
	}
	var srv *server.Server
	if err == nil {
		srv = server.New(node, d.Token, nil)
		err = srv.Start("127.0.0.1:0", filepath.Join(dir, datadir.APIFile))
	}
	stop = func() {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Close(ctx)
		}
		if node != nil {
			node.Close()
		}
		d.Close()
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return "", nil, err
	}
	return dir, stop, nil
}
