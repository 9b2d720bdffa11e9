// Unit tests of the streaming SQL filter (mysql-filter.ts) and the dump helpers that need no
// server: the fixture is real mariadb-dump 10.11 output (--databases d1 d2 --routines --events
// --triggers --master-data=2), with marker-like lines planted inside a routine body. The
// round trip through real servers is in mysql.test.ts.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createSqlFilter, type SqlFilterOptions } from '../../src/engines/mysql/filter.js';
import {
  buildDumpArgs,
  DumpAccount,
  DumpGuard,
  DumpIndex,
  isToolErrorLine,
  parseBinlogFacts,
  type DumpExit,
} from '../../src/engines/mysql/dump.js';
import { optionFileText, quoteOptionValue, mapConnError, connTarget } from '../../src/engines/mysql/conn.js';
import { grantPatternToRegExp, parseGrants, checkPrivileges, splitTableName } from '../../src/engines/mysql/schema.js';
import { parseToolVersion, versionAtLeast, type ResolvedTool } from '../../src/engines/mysql/tools.js';
import { planRestore, buildClientArgs, verifyLogical } from '../../src/engines/mysql/logical.js';
import { DbsError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';

const FIXTURE: string = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: 127.0.0.1    Database: d1\n-- ------------------------------------------------------\n-- Server version\t10.11.19-MariaDB-0+deb12u1-log\n\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;\n/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n/*!40101 SET NAMES utf8mb4 */;\n/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n\n--\n-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.\n-- Use this when creating a slave of the master server where the backup was made.\n-- The new server will be connecting to the master server where the backup was taken.\n--\n\n-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=7557;\n\n-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed as comments later in the file.\n\n--\n-- Current Database: `d1`\n--\n\nCREATE DATABASE /*!32312 IF NOT EXISTS*/ `d1` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */;\n\nUSE `d1`;\n\n--\n-- Table structure for table `t1`\n--\n\nDROP TABLE IF EXISTS `t1`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t1` (\n  `id` int(11) NOT NULL,\n  `s` varchar(50) DEFAULT NULL,\n  `b` blob DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `t1`\n--\n\nLOCK TABLES `t1` WRITE;\n/*!40000 ALTER TABLE `t1` DISABLE KEYS */;\nINSERT INTO `t1` VALUES\n(1,'a\ud83d\ude00\\n-- Table structure for table `x`\\nUSE `d2`;',0x00010203),\n(2,NULL,NULL);\n/*!40000 ALTER TABLE `t1` ENABLE KEYS */;\nUNLOCK TABLES;\n/*!50003 SET @saved_cs_client      = @@character_set_client */ ;\n/*!50003 SET @saved_cs_results     = @@character_set_results */ ;\n/*!50003 SET @saved_col_connection = @@collation_connection */ ;\n/*!50003 SET character_set_client  = utf8mb4 */ ;\n/*!50003 SET character_set_results = utf8mb4 */ ;\n/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;\n/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;\nDELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`127.0.0.1`*/ /*!50003 TRIGGER tr1 BEFORE INSERT ON t1 FOR EACH ROW BEGIN SET NEW.s = CONCAT(NEW.s, '!'); END \n*/;;\nDELIMITER ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n/*!50003 SET character_set_client  = @saved_cs_client */ ;\n/*!50003 SET character_set_results = @saved_cs_results */ ;\n/*!50003 SET collation_connection  = @saved_col_connection */ ;\n\n--\n-- Table structure for table `t2`\n--\n\nDROP TABLE IF EXISTS `t2`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t2` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `t2`\n--\n\nLOCK TABLES `t2` WRITE;\n/*!40000 ALTER TABLE `t2` DISABLE KEYS */;\nINSERT INTO `t2` VALUES\n(1),\n(2),\n(3),\n(4),\n(5),\n(6),\n(7),\n(8),\n(9),\n(10);\n/*!40000 ALTER TABLE `t2` ENABLE KEYS */;\nUNLOCK TABLES;\n\n--\n-- Table structure for table `t3`\n--\n\nDROP TABLE IF EXISTS `t3`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t3` (\n  `id` int(11) NOT NULL,\n  `b` blob DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `t3`\n--\n\nLOCK TABLES `t3` WRITE;\n/*!40000 ALTER TABLE `t3` DISABLE KEYS */;\nINSERT INTO `t3` VALUES\n(1,0x0A2D2D0A),\n(2,0x78787878787878787878);\n/*!40000 ALTER TABLE `t3` ENABLE KEYS */;\nUNLOCK TABLES;\n\n--\n-- Temporary table structure for view `v1`\n--\n\nDROP TABLE IF EXISTS `v1`;\n/*!50001 DROP VIEW IF EXISTS `v1`*/;\nSET @saved_cs_client     = @@character_set_client;\nSET character_set_client = utf8mb4;\n/*!50001 CREATE VIEW `v1` AS SELECT\n NULL AS `id`,\n NULL AS `i2` */;\nSET character_set_client = @saved_cs_client;\n\n--\n-- Table structure for table `we``ird`\n--\n\nDROP TABLE IF EXISTS `we``ird`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `we``ird` (\n  `id` int(11) DEFAULT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `we``ird`\n--\n\nLOCK TABLES `we``ird` WRITE;\n/*!40000 ALTER TABLE `we``ird` DISABLE KEYS */;\n/*!40000 ALTER TABLE `we``ird` ENABLE KEYS */;\nUNLOCK TABLES;\n\n--\n-- Dumping events for database 'd1'\n--\n/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;\n/*!50106 DROP EVENT IF EXISTS `e1` */;\nDELIMITER ;;\n/*!50003 SET @saved_cs_client      = @@character_set_client */ ;;\n/*!50003 SET @saved_cs_results     = @@character_set_results */ ;;\n/*!50003 SET @saved_col_connection = @@collation_connection */ ;;\n/*!50003 SET character_set_client  = utf8mb4 */ ;;\n/*!50003 SET character_set_results = utf8mb4 */ ;;\n/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;;\n/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;;\n/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;;\n/*!50003 SET @saved_time_zone      = @@time_zone */ ;;\n/*!50003 SET time_zone             = 'SYSTEM' */ ;;\n/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`127.0.0.1`*/ /*!50106 EVENT `e1` ON SCHEDULE EVERY 1 DAY STARTS '2026-11-21 13:16:17' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM t2 WHERE id > 1000 \n*/ ;;\n/*!50003 SET time_zone             = @saved_time_zone */ ;;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;;\n/*!50003 SET character_set_client  = @saved_cs_client */ ;;\n/*!50003 SET character_set_results = @saved_cs_results */ ;;\n/*!50003 SET collation_connection  = @saved_col_connection */ ;;\nDELIMITER ;\n/*!50106 SET TIME_ZONE= @save_time_zone */ ;\n\n--\n-- Dumping routines for database 'd1'\n--\n/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;\n/*!50003 DROP FUNCTION IF EXISTS `f1` */;\n/*!50003 SET @saved_cs_client      = @@character_set_client */ ;\n/*!50003 SET @saved_cs_results     = @@character_set_results */ ;\n/*!50003 SET @saved_col_connection = @@collation_connection */ ;\n/*!50003 SET character_set_client  = utf8mb4 */ ;\n/*!50003 SET character_set_results = utf8mb4 */ ;\n/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;\nDELIMITER ;;\nCREATE DEFINER=`root`@`127.0.0.1` FUNCTION `f1`(x INT) RETURNS int(11)\n    DETERMINISTIC\nRETURN x+1\n;;\nDELIMITER ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n/*!50003 SET character_set_client  = @saved_cs_client */ ;\n/*!50003 SET character_set_results = @saved_cs_results */ ;\n/*!50003 SET collation_connection  = @saved_col_connection */ ;\n/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;\n/*!50003 DROP PROCEDURE IF EXISTS `p1` */;\n/*!50003 SET @saved_cs_client      = @@character_set_client */ ;\n/*!50003 SET @saved_cs_results     = @@character_set_results */ ;\n/*!50003 SET @saved_col_connection = @@collation_connection */ ;\n/*!50003 SET character_set_client  = utf8mb4 */ ;\n/*!50003 SET character_set_results = utf8mb4 */ ;\n/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;\nDELIMITER ;;\nCREATE DEFINER=`root`@`127.0.0.1` PROCEDURE `p1`()\nBEGIN SELECT 1; END\n;;\nDELIMITER ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n/*!50003 SET character_set_client  = @saved_cs_client */ ;\n/*!50003 SET character_set_results = @saved_cs_results */ ;\n/*!50003 SET collation_connection  = @saved_col_connection */ ;\n/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;\n/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;\n/*!50003 DROP PROCEDURE IF EXISTS `p2` */;\n/*!50003 SET @saved_cs_client      = @@character_set_client */ ;\n/*!50003 SET @saved_cs_results     = @@character_set_results */ ;\n/*!50003 SET @saved_col_connection = @@collation_connection */ ;\n/*!50003 SET character_set_client  = utf8mb4 */ ;\n/*!50003 SET character_set_results = utf8mb4 */ ;\n/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;\nDELIMITER ;;\nCREATE DEFINER=`root`@`127.0.0.1` PROCEDURE `p2`()\nBEGIN\n--\n-- Table structure for table `t9`\n--\nUSE `d2`;\n  SELECT 'x';\nEND\n;;\nDELIMITER ;\n/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n/*!50003 SET character_set_client  = @saved_cs_client */ ;\n/*!50003 SET character_set_results = @saved_cs_results */ ;\n/*!50003 SET collation_connection  = @saved_col_connection */ ;\n\n--\n-- Current Database: `d2`\n--\n\nCREATE DATABASE /*!32312 IF NOT EXISTS*/ `d2` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */;\n\nUSE `d2`;\n\n--\n-- Table structure for table `t1`\n--\n\nDROP TABLE IF EXISTS `t1`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t1` (\n  `x` int(11) DEFAULT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `t1`\n--\n\nLOCK TABLES `t1` WRITE;\n/*!40000 ALTER TABLE `t1` DISABLE KEYS */;\nINSERT INTO `t1` VALUES\n(5);\n/*!40000 ALTER TABLE `t1` ENABLE KEYS */;\nUNLOCK TABLES;\n\n--\n-- Dumping events for database 'd2'\n--\n\n--\n-- Dumping routines for database 'd2'\n--\n\n--\n-- Current Database: `d1`\n--\n\nUSE `d1`;\n\n--\n-- Final view structure for view `v1`\n--\n\n/*!50001 DROP VIEW IF EXISTS `v1`*/;\n/*!50001 SET @saved_cs_client          = @@character_set_client */;\n/*!50001 SET @saved_cs_results         = @@character_set_results */;\n/*!50001 SET @saved_col_connection     = @@collation_connection */;\n/*!50001 SET character_set_client      = utf8mb4 */;\n/*!50001 SET character_set_results     = utf8mb4 */;\n/*!50001 SET collation_connection      = utf8mb4_general_ci */;\n/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`127.0.0.1` SQL SECURITY DEFINER */\n/*!50001 VIEW `v1` AS select `t1`.`id` AS `id`,`t2`.`id` AS `i2` from (`t1` join `t2` on(`t1`.`id` = `t2`.`id`)) */;\n/*!50001 SET character_set_client      = @saved_cs_client */;\n/*!50001 SET character_set_results     = @saved_cs_results */;\n/*!50001 SET collation_connection      = @saved_col_connection */;\n\n--\n-- Current Database: `d2`\n--\n\nUSE `d2`;\n\n-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows\n\n-- Preferably use GTID to start replication from GTID position:\n\n-- SET GLOBAL gtid_slave_pos='0-1-43';\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;\n/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;\n/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n-- Dump completed\n";

/** FIXTURE with the data section of `name` (the first one) cut out, as mariadb-dump writes it when it skips the rows. */
function withoutData(text: string, name: string): string {
  const start = text.indexOf(`\n--\n-- Dumping data for table \`${name}\``);
  const end = text.indexOf('\n--\n-- ', start + 5);
  if (start < 0 || end < 0) throw new Error(`no data section for ${name}`);
  return text.slice(0, start) + text.slice(end);
}

/** mariadb-dump 10.11 --verbose on stderr for `--databases e d` (e: sequence s1, gen, mrg of MRG_MyISAM; d: a_big, b_small that lost SELECT, c_empty, view v1). */
const VERBOSE_E_D = `-- Connecting to 127.0.0.1...
-- Starting transaction...
-- Setting savepoint...
-- Retrieving sequence structure for  s1...
-- Retrieving table structure for table gen...
-- Sending SELECT query...
-- Retrieving rows...
-- Rolling back to savepoint sp...
-- Retrieving table structure for table mrg...
-- Warning: Skipping data for table 'mrg' because it's of type MRG_MyISAM
-- Rolling back to savepoint sp...
-- Releasing savepoint...
-- Setting savepoint...
-- Retrieving table structure for table a_big...
-- Sending SELECT query...
-- Retrieving rows...
-- Rolling back to savepoint sp...
-- Retrieving table structure for table b_small...
-- Skipping dump data for table 'b_small', it has no fields
-- Rolling back to savepoint sp...
-- Retrieving table structure for table c_empty...
-- Sending SELECT query...
-- Retrieving rows...
-- Rolling back to savepoint sp...
-- Retrieving table structure for table v1...
-- It's a view, create dummy view for view
-- Rolling back to savepoint sp...
-- Releasing savepoint...
-- Retrieving view structure for table gen...
-- It's base table, skipped
-- Retrieving view structure for table v1...
-- Disconnecting from 127.0.0.1...`.split('\n');

/** Feeds text through a fresh filter in chunks of the given size; returns the output. */
async function run(input: string | Buffer, opts: SqlFilterOptions, chunk = 1 << 16): Promise<string> {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createSqlFilter(opts),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out).toString('utf8');
}

/** Runs with several chunk sizes and checks they all give the same output. */
async function runAll(input: string, opts: SqlFilterOptions): Promise<string> {
  const whole = await run(input, opts, input.length + 1);
  for (const size of [1, 2, 3, 7, 64, 1000]) {
    expect(await run(input, opts, size), `chunk size ${size}`).toBe(whole);
  }
  return whole;
}

describe('SqlFilter', () => {
  it('keeps everything byte for byte without options', async () => {
    expect(await runAll(FIXTURE, {})).toBe(FIXTURE);
  });

  it('keeps one whole database: its tables, views, triggers, routines and events', async () => {
    const out = await runAll(FIXTURE, { databases: ['d1'] });
    expect(out).toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d1`');
    expect(out).not.toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d2`');
    expect(out).not.toContain('(5);');
    expect(out).toContain('-- Table structure for table `t1`');
    expect(out).toContain('TRIGGER tr1');
    expect(out).toContain('PROCEDURE `p1`');
    expect(out).toContain('EVENT `e1`');
    expect(out).toContain('-- Final view structure for view `v1`');
    expect(out).toContain('CREATE TABLE `we``ird`');
    // header and footer stay
    expect(out.startsWith('/*M!999999')).toBe(true);
    expect(out).toContain('/*!40101 SET NAMES utf8mb4 */;');
    expect(out).toContain('/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;');
    expect(out.trimEnd().endsWith('-- Dump completed')).toBe(true);
    // every DELIMITER ;; is closed again
    expect(out.match(/^DELIMITER ;;$/gm)?.length).toBe(out.match(/^DELIMITER ;$/gm)?.length);
  });

  it('keeps the other database and nothing of d1', async () => {
    const out = await runAll(FIXTURE, { databases: ['d2'] });
    expect(out).toContain('USE `d2`;');
    expect(out).toContain('(5);');
    expect(out).not.toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d1`');
    expect(out).not.toContain('TRIGGER tr1');
    expect(out).not.toContain('PROCEDURE');
    expect(out).not.toContain('VIEW `v1`');
    expect(out).not.toMatch(/^DELIMITER/m);
  });

  it('keeps single tables with their triggers, without routines and events', async () => {
    const out = await runAll(FIXTURE, { tables: [['d1', 't1']] });
    expect(out).toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d1`');
    expect(out).toContain('CREATE TABLE `t1`');
    expect(out).toContain("(1,'a😀\\n-- Table structure for table `x`\\nUSE `d2`;',0x00010203),");
    expect(out).toContain('TRIGGER tr1');
    expect(out).not.toContain('CREATE TABLE `t2`');
    expect(out).not.toContain('CREATE TABLE `t3`');
    expect(out).not.toContain('EVENT `e1`');
    expect(out).not.toContain('PROCEDURE');
    expect(out).not.toContain('VIEW `v1`');
    expect(out).not.toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d2`');
    expect(out).not.toContain('(5);');
  });

  it('keeps a table of the second database and the oddly named one', async () => {
    const out = await runAll(FIXTURE, { tables: [['d2', 't1'], ['d1', 'we`ird']] });
    expect(out).toContain('(5);');
    expect(out).toContain('CREATE TABLE `we``ird`');
    expect(out).not.toContain('CREATE TABLE `t1` (\n  `id`');
    expect(out).not.toContain('TRIGGER tr1');
  });

  it('keeps a view: its placeholder and its final definition', async () => {
    const out = await runAll(FIXTURE, { tables: [['d1', 'v1']] });
    expect(out).toContain('-- Temporary table structure for view `v1`');
    expect(out).toContain('/*!50001 VIEW `v1` AS select');
    expect(out).not.toContain('CREATE TABLE `t1`');
    // the view's final section comes after a second USE `d1`
    expect(out.match(/^USE `d1`;$/gm)?.length).toBe(2);
  });

  it('renames a database in CREATE DATABASE, USE and the titles, and leaves data alone', async () => {
    const out = await runAll(FIXTURE, { databases: ['d1'], rename: { d1: 'n`ew' } });
    expect(out).toContain('-- Current Database: `n``ew`');
    expect(out).toContain('CREATE DATABASE /*!32312 IF NOT EXISTS*/ `n``ew` /*!40100 DEFAULT CHARACTER SET latin1');
    expect(out.match(/^USE `n``ew`;$/gm)?.length).toBe(2);
    expect(out).not.toMatch(/^USE `d1`;$/m);
    expect(out).not.toContain('`d1`');
    // data and routine bodies are not rewritten
    expect(out).toContain("USE `d2`;',0x00010203),");
    expect(out).toContain('BEGIN\n--\n-- Table structure for table `t9`\n--\nUSE `d2`;\n');
  });

  it('does not take marker-like lines inside a routine body for sections', async () => {
    // p2's body holds "-- Table structure for table `t9`" and "USE `d2`;" inside DELIMITER ;;
    const out = await runAll(FIXTURE, { databases: ['d1'] });
    expect(out).toContain("-- Table structure for table `t9`\n--\nUSE `d2`;\n  SELECT 'x';\nEND\n;;\nDELIMITER ;\n");
    const only = await runAll(FIXTURE, { tables: [['d1', 't9']] });
    expect(only).not.toContain('SELECT');
  });

  it('drops the sandbox-mode line on request only', async () => {
    const out = await runAll(FIXTURE, { dropSandboxLine: true });
    expect(out).toBe(FIXTURE.slice(FIXTURE.indexOf('\n') + 1));
  });

  it('streams megabyte lines without decoding them and keeps them intact', async () => {
    // (booleans, not toContain: a failure must not print megabytes)
    const big1 = '(' + 'x'.repeat(3 * 1024 * 1024) + '),\n';
    const big2 = '-(' + 'y'.repeat(3 * 1024 * 1024) + '),\n'; // starts like a comment, is not one
    const input = FIXTURE.replace('(2,NULL,NULL);\n', big1 + '(2,NULL,NULL);\n').replace('(5);\n', big2 + '(5);\n');
    const keep1 = await run(input, { tables: [['d1', 't1']] }, 65536);
    expect(keep1.includes(big1)).toBe(true);
    expect(keep1.includes('yyyy')).toBe(false);
    const keep2 = await run(input, { tables: [['d2', 't1']] }, 65536);
    expect(keep2.includes('xxxx')).toBe(false);
    expect(keep2.includes(big2)).toBe(true);
    expect(await run(input, {}, 65536) === input).toBe(true);
  });

  it('filters 100 MB of rows quickly', async () => {
    const row = "(123456,'some text of a row with a few words in it',0x0102030405060708,'2024-01-01 00:00:00'),\n";
    const body = Buffer.from(row.repeat(Math.ceil((100 * 1024 * 1024) / row.length)));
    const head = Buffer.from(FIXTURE.slice(0, FIXTURE.indexOf('(1),')));
    const tail = Buffer.from(FIXTURE.slice(FIXTURE.indexOf('(1),')));
    const input = Buffer.concat([head, body, tail]);
    const t0 = performance.now();
    let n = 0;
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += 65536) chunks.push(input.subarray(i, i + 65536));
    await pipeline(
      Readable.from(chunks),
      createSqlFilter({ tables: [['d1', 't2']] }),
      new Writable({
        write(c: Buffer, _e, cb) {
          n += c.length;
          cb();
        },
      }),
    );
    const ms = performance.now() - t0;
    console.log(`filter: ${(input.length / 1048576).toFixed(0)} MiB in ${ms.toFixed(0)} ms (${((input.length / 1048576) / (ms / 1000)).toFixed(0)} MiB/s)`);
    expect(n).toBeGreaterThan(body.length);
    expect(ms).toBeLessThan(10_000);
  });
});

describe('DumpIndex', () => {
  it('finds databases, tables, views whatever the chunking', () => {
    for (const size of [1, 2, 3, 5, 17, 100, 1 << 20]) {
      const idx = new DumpIndex();
      const b = Buffer.from(FIXTURE);
      for (let i = 0; i < b.length; i += size) idx.scan(b.subarray(i, i + size));
      expect(idx.databases, `size ${size}`).toEqual(['d1', 'd2']);
      // t9 is the marker-like line inside p2's body: harmless (it only makes the restore check stricter)
      expect(idx.tables.filter((t) => t !== 'd1.t9'), `size ${size}`).toEqual(['d1.t1', 'd1.t2', 'd1.t3', 'd1.v1', 'd1.we`ird', 'd2.t1']);
      expect(idx.views).toEqual(['d1.v1']);
    }
  });

  it('checks that every table has its data section, whatever the chunking', () => {
    const scan = (text: string, size: number) => {
      const idx = new DumpIndex();
      const b = Buffer.from(text);
      for (let i = 0; i < b.length; i += size) idx.scan(b.subarray(i, i + size));
      idx.finish();
      return idx;
    };
    // A MERGE table: structure only, by design (its rows are in its underlying tables).
    const merge = withoutData(FIXTURE, 't3').replace(/(CREATE TABLE `t3` \([^]*?\n\) ENGINE=)InnoDB/, '$1MRG_MyISAM');
    for (const size of [1, 2, 3, 5, 17, 100, 4096, 1 << 20]) {
      // The whole fixture: `we``ird` is empty (a data section without rows), p2's body holds a
      // title-like comment for t9: neither is a table without its rows, and t9 is no table.
      const whole = scan(FIXTURE, size);
      expect(whole.missingData, `size ${size}`).toEqual([]);
      expect(whole.dataLeftOut).toEqual([]);
      expect(whole.tables, `size ${size}`).toEqual(['d1.t1', 'd1.t2', 'd1.t3', 'd1.v1', 'd1.we`ird', 'd2.t1']);

      const cut = scan(withoutData(FIXTURE, 't2'), size);
      expect(cut.missingData, `size ${size}`).toEqual([{ table: 'd1.t2', db: 'd1', name: 't2', engine: 'InnoDB' }]);
      expect(cut.tables).toEqual(['d1.t1', 'd1.t2', 'd1.t3', 'd1.v1', 'd1.we`ird', 'd2.t1']);
      // The last table of a database, and the empty one: the next title ends their section.
      expect(scan(withoutData(FIXTURE, 'we``ird'), size).missingData.map((t) => t.table)).toEqual(['d1.we`ird']);
      const d2 = scan(withoutData(FIXTURE.replace('-- Dumping data for table `t1`', '-- Dumping data for table `t1x`'), 't1'), size);
      expect(d2.missingData.map((t) => t.table), `size ${size}`).toEqual(['d1.t1', 'd2.t1']);

      const m = scan(merge, size);
      expect(m.missingData).toEqual([]);
      expect(m.dataLeftOut).toEqual([{ table: 'd1.t3', db: 'd1', name: 't3', engine: 'MRG_MyISAM' }]);
    }
  });
});

describe('DumpAccount (--verbose on stderr)', () => {
  it("reads the tool's account: tables per database, rows dumped, rows skipped and why", () => {
    const acc = new DumpAccount(['e', 'd']);
    const toLog = VERBOSE_E_D.filter((l) => !acc.line(l));
    expect(acc.problem()).toBeUndefined();
    expect(acc.tables).toEqual(['e.s1', 'e.gen', 'e.mrg', 'd.a_big', 'd.b_small', 'd.c_empty', 'd.v1']);
    expect(acc.views).toEqual(['d.v1']);
    expect(acc.sequences).toEqual(['e.s1']);
    expect(acc.missingData).toEqual([{ table: 'd.b_small', db: 'd', name: 'b_small' }]);
    expect(acc.dataLeftOut).toEqual([{ table: 'e.mrg', db: 'e', name: 'mrg', reason: "because it's of type MRG_MyISAM" }]);
    // Only the reasons for rows left out reach the task log.
    expect(toLog).toEqual(["-- Warning: Skipping data for table 'mrg' because it's of type MRG_MyISAM", "-- Skipping dump data for table 'b_small', it has no fields"]);
  });

  it('is not trusted when its databases do not add up or it never says it reads rows', () => {
    const three = new DumpAccount(['e', 'd', 'x']);
    for (const l of VERBOSE_E_D) three.line(l);
    expect(three.problem()).toMatch(/names 2 database\(s\), 3 were dumped/);
    const one = new DumpAccount(['e']);
    for (const l of VERBOSE_E_D) one.line(l);
    expect(one.problem()).toMatch(/more databases/);
    const mute = new DumpAccount(['e', 'd']);
    for (const l of VERBOSE_E_D.filter((l) => !l.includes('Sending SELECT'))) mute.line(l);
    expect(mute.problem()).toMatch(/not understood/);
    // A table it said nothing of, when it does say so for the others: its rows are missing.
    const silent = new DumpAccount(['e', 'd']);
    for (const l of VERBOSE_E_D.filter((l, i) => !(l.includes('Sending SELECT') && VERBOSE_E_D[i - 1]?.includes('c_empty')))) silent.line(l);
    expect(silent.problem()).toBeUndefined();
    expect(silent.missingData.map((t) => t.table)).toEqual(['d.b_small', 'd.c_empty']);
  });
});

describe('dump helpers', () => {
  it('parses binlog coordinates and the GTID position', () => {
    const tail = FIXTURE.slice(-4096);
    expect(parseBinlogFacts(FIXTURE.slice(0, 65536), tail)).toEqual({ file: 'mysql-bin.000001', position: 7557, gtid: '0-1-43' });
    expect(
      parseBinlogFacts("-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n"),
    ).toEqual({ file: 'binlog.000002', position: 157 });
    expect(parseBinlogFacts('-- nothing here\n')).toBeUndefined();
  });

  it('tells error lines from warnings', () => {
    expect(isToolErrorLine("mariadb-dump: Couldn't execute 'show events': Access denied (1044)")).toBe(true);
    expect(isToolErrorLine('mysqldump: Got error: 1045: Access denied for user')).toBe(true);
    expect(isToolErrorLine('mariadb-dump: Error 2013: Lost connection to server during query')).toBe(true);
    expect(isToolErrorLine('mysqldump: [Warning] Using a password on the command line interface can be insecure.')).toBe(false);
    expect(isToolErrorLine("mysqldump: Deprecated program name. It will be removed in a future release, use '/usr/bin/mariadb-dump' instead")).toBe(false);
    expect(isToolErrorLine('ERROR 1050 (42S01) at line 25: Table `t` already exists')).toBe(true);
    expect(isToolErrorLine('-- Warning: something')).toBe(false);
  });

  const mariaTool: ResolvedTool = {
    name: 'mariadb-dump',
    path: '/usr/bin/mariadb-dump',
    version: '10.11.19-MariaDB',
    versionLine: '',
    flavor: 'mariadb',
  };
  const mysqlTool: ResolvedTool = { ...mariaTool, name: 'mysqldump', path: '/usr/bin/mysqldump', version: '8.0.36', flavor: 'mysql' };

  it('builds the dump argv: option file first, no secret, -- before names', () => {
    const pw = 'S3cret!pw';
    const text = optionFileText(connTarget({ kind: 'mysql', url: 'mysql://u@h:1', host: 'h', port: 1, user: 'u', password: new Secret(pw), params: {} }));
    expect(text).toContain(`password="${pw}"`);
    const args = buildDumpArgs(mariaTool, '/tmp/x/opt.cnf', {
      databases: ['a', '-b'],
      ignoreTables: ['a.t2'],
      routinesAndEvents: true,
      binlog: true,
    });
    expect(args[0]).toBe('--defaults-file=/tmp/x/opt.cnf');
    expect(args.join(' ')).not.toContain(pw);
    expect(args).toEqual(
      expect.arrayContaining(['--single-transaction', '--quick', '--hex-blob', '--default-character-set=utf8mb4', '--routines', '--events', '--triggers', '--master-data=2', '--ignore-table=a.t2']),
    );
    expect(args.slice(-4)).toEqual(['--databases', '--', 'a', '-b']);
    expect(args.some((a) => a.startsWith('--password') || a.startsWith('-p'))).toBe(false);

    const my = buildDumpArgs(mysqlTool, '/o.cnf', { databases: ['a'], ignoreTables: [], routinesAndEvents: false, binlog: true });
    expect(my).toContain('--source-data=2');
    expect(my).toContain('--set-gtid-purged=COMMENTED');
    expect(my).not.toContain('--routines');
    expect(buildClientArgs('/o.cnf')[0]).toBe('--defaults-file=/o.cnf');
  });

  it('quotes option-file values', () => {
    expect(quoteOptionValue('a"b\\c#d\'e f ;g ')).toBe('"a\\"b\\\\c#d\\\'e f ;g "');
    expect(quoteOptionValue('x\ny')).toBe('"x\\ny"');
    const sock = optionFileText(connTarget({ kind: 'mysql', url: 'mysql://u@localhost', user: 'u', params: { socket: '/run/my.sock' } }));
    expect(sock).toContain('socket="/run/my.sock"');
    expect(sock).toContain('protocol=SOCKET');
    expect(sock).not.toContain('password');
  });

  it('parses tool versions', () => {
    expect(parseToolVersion('mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)')).toMatchObject({ version: '10.11.19-MariaDB', flavor: 'mariadb' });
    expect(parseToolVersion('mariadb-dump from 11.4.2-MariaDB, client 10.19 for Linux (x86_64)')).toMatchObject({ version: '11.4.2-MariaDB', flavor: 'mariadb' });
    expect(parseToolVersion('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)')).toMatchObject({ version: '8.0.36', flavor: 'mysql' });
    expect(versionAtLeast('8.0.26', 8, 0, 26)).toBe(true);
    expect(versionAtLeast('8.0.25', 8, 0, 26)).toBe(false);
    expect(versionAtLeast('10.11.19-MariaDB', 8, 0, 26)).toBe(true);
  });

  it('maps connection errors without the password', () => {
    const t = connTarget({ kind: 'mysql', url: 'mysql://u@h:3307', host: 'h', port: 3307, user: 'u', password: new Secret('hunter22'), params: {} });
    const auth = mapConnError(Object.assign(new Error("Access denied for user 'u'@'h' (using password: YES) hunter22"), { code: 'ER_ACCESS_DENIED_ERROR' }), t, 'source');
    expect(auth.code).toBe('SOURCE_AUTH');
    expect(auth.message).toContain('u@h:3307');
    expect(auth.message).not.toContain('hunter22');
    expect(auth.hint).toMatch(/--password-env/);
    expect(mapConnError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), t, 'source')).toMatchObject({ code: 'SOURCE_UNREACHABLE' });
    expect(mapConnError(Object.assign(new Error("Unknown database 'x'"), { code: 'ER_BAD_DB_ERROR' }), t, 'source')).toMatchObject({ code: 'SOURCE_NOT_FOUND' });
  });
});

describe('DumpGuard', () => {
  async function through(text: string, exit: DumpExit, stderr: string[] = []): Promise<{ error?: unknown; out: string }> {
    const guard = new DumpGuard({ toolName: 'mariadb-dump', exit: Promise.resolve(exit), stderrTail: () => stderr, what: 'root@h:1' });
    const out: Buffer[] = [];
    guard.on('data', (c: Buffer) => out.push(c));
    const ended = new Promise<{ error?: unknown }>((resolve) => {
      guard.on('end', () => resolve({}));
      guard.on('error', (error) => resolve({ error }));
    });
    guard.end(Buffer.from(text));
    const r = await ended;
    return { ...r, out: Buffer.concat(out).toString() };
  }

  it('ends cleanly for a complete dump', async () => {
    const r = await through(FIXTURE, { exitCode: 0, canceled: false });
    expect(r.error).toBeUndefined();
    expect(r.out).toBe(FIXTURE);
    // Without MariaDB's sandbox-mode line, and MySQL's header.
    const plain = FIXTURE.slice(FIXTURE.indexOf('\n') + 1);
    expect((await through(plain, { exitCode: 0, canceled: false })).error).toBeUndefined();
    const mysql = plain.replace('-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB', '-- MySQL dump 10.13  Distrib 8.0.40');
    expect((await through(mysql, { exitCode: 0, canceled: false })).error).toBeUndefined();
  });

  it('errors for a missing trailer, a bad exit, a signal, an error line, a cancel', async () => {
    const cut = FIXTURE.slice(0, 5000);
    const cases: Array<[string, DumpExit, string[], string, RegExp]> = [
      [cut, { exitCode: 0, canceled: false }, [], 'BACKUP_FAILED', /trailer/],
      [FIXTURE, { exitCode: 2, canceled: false }, ["mariadb-dump: Couldn't execute 'show events': denied (1044)"], 'BACKUP_FAILED', /exited with code 2: mariadb-dump: Couldn't execute/],
      [cut, { signal: 'SIGKILL', canceled: false }, [], 'BACKUP_FAILED', /killed by SIGKILL/],
      [FIXTURE, { exitCode: 0, canceled: false }, ['mariadb-dump: Got error: 2013: Lost connection'], 'BACKUP_FAILED', /reported an error/],
      ['', { exitCode: 0, canceled: false }, [], 'BACKUP_FAILED', /wrote nothing/],
      [cut, { signal: 'SIGTERM', canceled: true }, [], 'INTERRUPTED', /interrupted/],
      // The stream lost its first bytes (session 5: the tool wrote before the hand-off).
      [FIXTURE.slice(FIXTURE.indexOf('(2),')), { exitCode: 0, canceled: false }, [], 'BACKUP_FAILED', /does not start with the dump tool's header/],
      [FIXTURE.slice(1), { exitCode: 0, canceled: false }, [], 'BACKUP_FAILED', /beginning is missing/],
      // mariadb-dump skipped a table's rows (it saw no columns) and exited 0.
      [withoutData(FIXTURE, 't2'), { exitCode: 0, canceled: false }, [], 'BACKUP_FAILED', /the rows of table `d1`\.`t2` are not in the dump/],
    ];
    for (const [text, exit, stderr, code, re] of cases) {
      const r = await through(text, exit, stderr);
      expect(r.error).toBeInstanceOf(DbsError);
      expect((r.error as DbsError).code).toBe(code);
      expect((r.error as DbsError).message).toMatch(re);
    }
  });
});

describe('DumpGuard on the framed path (edges only)', () => {
  async function edges(text: string, stderr: string[], databases: string[]): Promise<unknown> {
    const account = new DumpAccount(databases);
    const kept = stderr.filter((l) => !account.line(l));
    const guard = new DumpGuard({ toolName: 'mariadb-dump', exit: Promise.resolve({ exitCode: 0, canceled: false }), stderrTail: () => kept, what: 'root@h:1', account });
    const b = Buffer.from(text);
    guard.takeEdges({ head: b.subarray(0, 65536), tail: b.subarray(-4096), rawBytes: b.length });
    guard.resume();
    const done = new Promise<unknown>((resolve) => {
      guard.on('end', () => resolve(undefined));
      guard.on('error', resolve);
    });
    guard.end();
    return done;
  }

  it("fails on the tool's own account of a table whose rows it skipped; passes a whole account", async () => {
    const err = await edges(FIXTURE, VERBOSE_E_D, ['e', 'd']);
    expect(err).toBeInstanceOf(DbsError);
    expect((err as DbsError).code).toBe('BACKUP_FAILED');
    expect((err as DbsError).message).toMatch(/the rows of table `d`\.`b_small` are not in the dump/);
    expect((err as DbsError).details).toMatchObject({ tablesWithoutData: ['d.b_small'] });
    const good = VERBOSE_E_D.map((l) => (l.includes("'b_small', it has no fields") ? '-- Sending SELECT query...' : l));
    expect(await edges(FIXTURE, good, ['e', 'd'])).toBeUndefined();
    // The edges do not show the sections: a dump without t2's rows passes on its account alone.
    expect(await edges(withoutData(FIXTURE, 't2'), good, ['e', 'd'])).toBeUndefined();
  });
});

describe('verifyLogical (backup verify --prepare)', () => {
  const ctx = { signal: new AbortController().signal, log: () => undefined, tmpDir: '/nonexistent' };
  const req = (text: string, databases = ['d1', 'd2']) => ({
    type: 'logical' as const,
    selection: { databases: [], all: true, tables: [] },
    facts: { databases },
    artifacts: [{ name: 'dump.sql.zst', rawBytes: text.length, open: async () => Readable.from([Buffer.from(text.slice(0, 3000)), Buffer.from(text.slice(3000))]) }],
  });
  const problem = (text: string, databases?: string[]) =>
    verifyLogical(req(text, databases), ctx).then(
      () => 'ok',
      (e: DbsError) => `${e.code}: ${e.message}`,
    );

  it('passes a whole dump and reports what it holds', async () => {
    const r = await verifyLogical(req(FIXTURE), ctx);
    expect(r.facts).toMatchObject({ dumpBytes: Buffer.byteLength(FIXTURE), databases: 2 });
  });

  it('fails a dump without its beginning, without its end, or without a database', async () => {
    expect(await problem(FIXTURE.slice(FIXTURE.indexOf('(2),')))).toMatch(/^VERIFY_FAILED: .*beginning is missing/);
    expect(await problem(FIXTURE.slice(0, -200))).toMatch(/^VERIFY_FAILED: .*trailer/);
    expect(await problem(FIXTURE, ['d1', 'd2', 'd3'])).toMatch(/^VERIFY_FAILED: .*database\(s\) d3/);
  });

  it('fails a dump with a table whose data section is missing; an empty table passes', async () => {
    expect(await problem(withoutData(FIXTURE, 't2'))).toMatch(/^VERIFY_FAILED: .*structure of `d1`\.`t2` without its data section/);
    expect(await problem(withoutData(withoutData(FIXTURE, 't2'), 't3'))).toMatch(/`d1`\.`t2`, `d1`\.`t3` without their data section/);
    expect(FIXTURE).toContain('-- Dumping data for table `we``ird`\n--\n\nLOCK TABLES `we``ird` WRITE;\n/*!40000 ALTER TABLE `we``ird` DISABLE KEYS */;\n/*!40000 ALTER TABLE `we``ird` ENABLE KEYS */;');
    expect(await problem(FIXTURE)).toBe('ok');
  });
});

describe('grants and selection helpers', () => {
  it('parses SHOW GRANTS lines, wildcards, roles and column grants', () => {
    const g = parseGrants([
      'GRANT `r1` TO `bk`@`127.0.0.1`',
      "GRANT RELOAD ON *.* TO `bk`@`127.0.0.1` IDENTIFIED BY PASSWORD '*D821'",
      'GRANT SELECT, SHOW VIEW ON `d1`.* TO `bk`@`127.0.0.1`',
      'GRANT SELECT ON `d2`.`t1` TO `bk`@`127.0.0.1`',
      'GRANT SELECT (a, b), INSERT ON `d3`.`t` TO `bk`@`127.0.0.1`',
      'GRANT SELECT, EVENT ON `d\\_%`.* TO `r1`',
      'GRANT EXECUTE ON PROCEDURE `d1`.`p` TO `bk`@`%`',
    ]);
    expect(g.hasGlobal('RELOAD')).toBe(true);
    expect(g.has('SELECT', 'd1', 'x')).toBe(true);
    expect(g.has('SHOW VIEW', 'd1')).toBe(true);
    expect(g.has('TRIGGER', 'd1', 'x')).toBe(false);
    expect(g.has('SELECT', 'd2', 't1')).toBe(true);
    expect(g.has('SELECT', 'd2', 't2')).toBe(false);
    expect(g.has('SELECT', 'd3', 't')).toBe(false); // column grant only
    expect(g.has('INSERT', 'd3', 't')).toBe(true);
    expect(g.has('EVENT', 'd_x')).toBe(true);
    expect(g.has('EVENT', 'dax')).toBe(false);
    const all = parseGrants(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION']);
    expect(all.has('TRIGGER', 'any', 't')).toBe(true);
    expect(grantPatternToRegExp('a_b%').test('aXbYYY')).toBe(true);
    expect(grantPatternToRegExp('a\\_b').test('aXb')).toBe(false);
  });

  it('names the missing privileges as problems', () => {
    const g = parseGrants(['GRANT SELECT ON `d1`.* TO `u`@`%`']);
    const rep = checkPrivileges(
      g,
      {
        databases: ['d1'],
        fullDatabases: ['d1'],
        objects: [
          { db: 'd1', name: 't', type: 'table', engine: 'InnoDB', bytes: 1 },
          { db: 'd1', name: 'v', type: 'view', engine: null, bytes: 0 },
          { db: 'd1', name: 'm', type: 'table', engine: 'MyISAM', bytes: 1 },
        ],
        ignoreTables: [],
        tableSubset: false,
        missing: [],
        sizeBytes: 2,
      },
      'mariadb',
    );
    expect(rep.problems.join('\n')).toMatch(/SHOW VIEW .*`d1`/);
    expect(rep.problems.join('\n')).toMatch(/TRIGGER .*`d1`/);
    expect(rep.problems.join('\n')).toMatch(/EVENT .*`d1`/);
    expect(rep.warnings.join('\n')).toMatch(/non-transactional.*d1\.m \(MyISAM\)/);
    expect(rep.warnings.join('\n')).toMatch(/routines/);
  });

  it('splits db.table names with dots against what exists', () => {
    expect(splitTableName('a.b.c', (d, t) => d === 'a.b' && t === 'c')).toEqual(['a.b', 'c']);
    expect(splitTableName('a.b.c', () => false)).toEqual(['a', 'b.c']);
    expect(splitTableName('abc', () => true)).toBeUndefined();
  });
});

describe('planRestore', () => {
  const facts = { databases: ['d1', 'd2'], tables: ['d1.t1', 'd1.t2', 'd1.v1', 'd2.t1'] };
  const sel = { databases: ['d1', 'd2'], all: false, tables: [] };

  it('restores everything as it is', () => {
    const p = planRestore(facts, sel, {});
    expect(p.filter).toBeUndefined();
    expect(p.targetObjects).toHaveLength(4);
  });

  it('renames one database', () => {
    const p = planRestore(facts, sel, { renameDatabase: { from: 'd1', to: 'x' } });
    expect(p.filter).toEqual({ databases: ['d1'], rename: { d1: 'x' } });
    expect(p.targetObjects).toEqual([
      ['x', 't1'],
      ['x', 't2'],
      ['x', 'v1'],
    ]);
  });

  it('restores some tables, also named under the new database name', () => {
    const p = planRestore(facts, sel, { tables: ['d1.t2', 'x.v1'], renameDatabase: { from: 'd1', to: 'x' } });
    expect(p.filter).toEqual({ tables: [['d1', 't2'], ['d1', 'v1']], rename: { d1: 'x' } });
    expect(p.targetObjects).toEqual([
      ['x', 't2'],
      ['x', 'v1'],
    ]);
  });

  it('refuses tables and databases that are not in the backup', () => {
    expect(() => planRestore(facts, sel, { tables: ['d1.nope'] })).toThrow(/not in the backup: d1.nope/);
    expect(() => planRestore(facts, sel, { renameDatabase: { from: 'zz', to: 'x' } })).toThrow(/`zz` is not in the backup/);
    expect(() => planRestore(facts, sel, { tables: ['d2.t1'], renameDatabase: { from: 'd1', to: 'x' } })).toThrow(/not in database `d1`/);
  });
});
