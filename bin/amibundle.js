#!/usr/bin/env node
import { amibundleMain, finish } from '../dist/cli-bundle/main.js';

finish(amibundleMain(process.argv.slice(2)));
